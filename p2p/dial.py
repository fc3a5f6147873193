"""Dial scheduling: which nodes the server connects to, and when (geth ``p2p/dial.go``).

``dialstate`` is pure policy. The server's run loop calls
``new_tasks(n_running, peers, now)`` on every iteration and ``task_done(t, now)``
whenever a task it started has finished; the task objects (``DialTask``,
``DiscoverTask``, ``WaitExpireTask``) do the actual I/O in a thread of their
own through ``task.do(srv)``.

Time: every ``now`` handed to ``dialstate`` is a float of seconds on a
monotonic clock (the server passes ``time.monotonic()``; the tests pass a fake
clock that starts at 0.0, which, like Go's zero time.Time, counts as "not set" for
``dialstate.start``). Durations are floats of seconds too. Where geth reads
the wall clock inside a task (``time.Now()`` in ``dialTask.resolve`` and
``discoverTask.Do``) this module calls ``_now()``, i.e. ``time.monotonic``.

The server object handed to ``Task.do`` must provide:
``srv.dialer.dial(node)`` -> connected socket, ``srv.setup_conn(fd, flags, dest)``
-> None or an error (raising is tolerated too), ``srv.ntab`` (a ``DiscoverTable``
or None), ``srv.quit`` (a ``threading.Event`` set when the server stops) and
``srv.last_lookup`` (monotonic seconds of the last lookup, None before the first).
"""

from __future__ import annotations

import enum
import heapq
import os
import socket
import threading
import time
import typing

from p2p.discover.node import Node, NodeID
from p2p.log import get_logger
from p2p.metrics import new_metered_conn
from p2p.netutil import addr_str

log = get_logger("p2p")

# Seconds to wait before dialing the same node again.
dialHistoryExpiration = 30.0

# Minimum spacing between two discovery lookups, in seconds.
lookupInterval = 4.0

# With no peers at all for this many seconds, the bootnodes are dialed directly.
fallbackInterval = 20.0

# Bounds of the back-off between two resolve attempts for the same node.
initialResolveDelay = 60.0
maxResolveDelay = 3600.0


class ConnFlag(enum.IntFlag):
    """How a connection came about. geth declares connFlag in server.go;
    it lives here so that server.py can import it without a cycle (server.py re-exports it)."""

    dynDialedConn = 1 << 0
    staticDialedConn = 1 << 1
    inboundConn = 1 << 2
    trustedConn = 1 << 3

    def __str__(self):
        # Same spelling and order as geth's connFlag.String.
        parts = []
        if self & ConnFlag.trustedConn:
            parts.append("trusted")
        if self & ConnFlag.dynDialedConn:
            parts.append("dyndial")
        if self & ConnFlag.staticDialedConn:
            parts.append("staticdial")
        if self & ConnFlag.inboundConn:
            parts.append("inbound")
        return "-".join(parts)

    def __format__(self, spec):
        return format(str(self), spec)


# geth's connFlag constants, at module level as in Go.
dynDialedConn = ConnFlag.dynDialedConn
staticDialedConn = ConnFlag.staticDialedConn
inboundConn = ConnFlag.inboundConn
trustedConn = ConnFlag.trustedConn


def _now() -> float:
    """The clock the tasks read (geth's time.Now()); tests may monkeypatch it."""
    return time.monotonic()


def _ip_str(ip) -> str:
    """Text form of a node's IP (an ipaddress object, or None for incomplete nodes)."""
    return "<nil>" if ip is None else str(ip)


class NodeDialer:
    """Opens connections to nodes: ``dial(node) -> socket``. Tests plug in their own."""

    def dial(self, dest: Node) -> socket.socket:
        raise NotImplementedError


class TCPDialer(NodeDialer):
    """Dials a node's TCP endpoint (geth wraps a net.Dialer; timeout/deadline mirror its fields).

    ``timeout`` bounds the connect in seconds (None: no bound, like a zero
    net.Dialer; the server passes its defaultDialTimeout); ``deadline`` (monotonic seconds)
    is an absolute limit, already-passed deadlines fail without connecting.
    The returned socket is in blocking mode: the timeout only covers the connect.
    """

    def __init__(self, timeout: float | None = None, deadline: float | None = None):
        self.timeout = timeout
        self.deadline = deadline
        self._cond = threading.Condition(threading.Lock())
        self._connecting: set = set()  # sockets inside connect(), for close()
        self._closed = False

    def dial(self, dest: Node) -> socket.socket:
        timeout = self.timeout
        if self.deadline is not None:
            remaining = self.deadline - _now()
            if remaining <= 0:
                raise socket.timeout("dial tcp %s: i/o timeout" % addr_str((dest.ip, dest.tcp)))
            timeout = remaining if timeout is None else min(timeout, remaining)
        if dest.ip is None:
            raise OSError("dial tcp %s: missing address" % addr_str((dest.ip, dest.tcp)))
        fam = socket.AF_INET6 if dest.ip.version == 6 else socket.AF_INET
        sock = socket.socket(fam, socket.SOCK_STREAM)
        with self._cond:
            if self._closed:
                sock.close()
                raise OSError("dial tcp %s: dialer closed" % addr_str((dest.ip, dest.tcp)))
            self._connecting.add(sock)
            self._cond.notify_all()
        try:
            sock.settimeout(timeout)
            sock.connect((_ip_str(dest.ip), dest.tcp))
        except BaseException:
            sock.close()
            raise
        finally:
            with self._cond:
                self._connecting.discard(sock)
        sock.settimeout(None)
        return sock

    # departure: dial-abort-on-stop: the server aborts its dialer's connects when it stops
    def close(self) -> None:
        """Abort the connects in progress (they fail at once) and refuse new ones.

        Python-only: a blocked connect() cannot be interrupted otherwise; the server
        calls this on stop for the dialer it made (geth 1.9 cancels a dial context).
        """
        with self._cond:
            self._closed = True
            connecting = list(self._connecting)
        for sock in connecting:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class DiscoverTable(typing.Protocol):
    """What the dialer needs from node discovery (``p2p.discover.table.Table`` provides it).

    ``read_random_nodes(buf)`` fills the list ``buf`` in place and returns how many it filled.
    """

    def self(self) -> Node: ...

    def close(self) -> None: ...

    def resolve(self, target: NodeID) -> Node | None: ...

    def lookup(self, target: NodeID) -> list: ...

    def read_random_nodes(self, buf: list) -> int: ...


class Task:
    """Something the server runs in a thread of its own and then reports to ``task_done``.

    Tasks compare by value (like geth's tests compare them with DeepEqual), so a
    server must track running tasks by identity (``is``), not with ``list.remove``.
    """

    __slots__ = ()

    def do(self, srv) -> None:
        raise NotImplementedError


# geth declares the dialstate type and its methods around this constructor; a
# Python class holds its methods, so the constructor comes first and the class after.
def new_dial_state(static, bootnodes, ntab: DiscoverTable | None, maxdyn: int, netrestrict) -> DialState:
    """A dial state for ``static`` nodes and fallback ``bootnodes`` (both may be None)."""
    s = DialState(maxdyn, ntab, netrestrict)
    s.bootnodes = list(bootnodes or ())
    s.random_nodes = [None] * (maxdyn // 2)
    for n in static or ():
        s.add_static(n)
    return s


class DialCheckError(Exception):
    """Why a node is not a dial candidate right now (the err* values of dial.go)."""


# geth declares these between dialstate.newTasks and dialstate.checkDial, inside what
# is the DialState class here.
errSelf = DialCheckError("is self")
errAlreadyDialing = DialCheckError("already dialing")
errAlreadyConnected = DialCheckError("already connected")
errRecentlyDialed = DialCheckError("recently dialed")
errNotWhitelisted = DialCheckError("not contained in netrestrict whitelist")


class DialState:
    """Decides which dials and lookups to run; one instance per server run loop.

    ``now`` arguments are monotonic seconds (see the module docstring).
    """

    def __init__(self, max_dyn_dials: int, ntab: DiscoverTable | None, netrestrict):
        self.max_dyn_dials = max_dyn_dials
        self.ntab = ntab
        self.netrestrict = netrestrict  # netutil.Netlist or None

        self.lookup_running = False
        self.dialing: dict = {}  # NodeID -> ConnFlag
        self.lookup_buf: list = []  # results of the last lookups not tried yet
        self.random_nodes: list = []  # buffer filled by ntab.read_random_nodes
        self.static: dict = {}  # NodeID -> DialTask
        self.hist = DialHistory()

        # When new_tasks first ran. 0.0 plays Go's zero time: like geth, a call with
        # now == 0.0 (the fake clock's first tick) leaves it unset.
        self.start: float = 0.0
        self.bootnodes: list = []  # fallback dials while there are no peers

    def add_static(self, n: Node) -> None:
        # A fresh task replaces any old one, which forces a new resolve.
        self.static[n.id] = DialTask(staticDialedConn, n)

    def remove_static(self, n: Node) -> None:
        # Stop dialing it, and forget the last dial so a re-added node is dialed right away.
        self.static.pop(n.id, None)
        self.hist.remove(n.id)

    def new_tasks(self, n_running: int, peers, now: float) -> list:
        """The tasks to start now. ``peers`` maps NodeID -> Peer (``peer.rw.flags`` is read)."""
        if self.start == 0.0:
            self.start = now
        if peers is None:
            peers = {}

        newtasks = []

        def add_dial(flag, n):
            err = self.check_dial(n, peers)
            if err is not None:
                log.trace("Skipping dial candidate", id=n.id, addr=addr_str((n.ip, n.tcp)), err=err)
                return False
            self.dialing[n.id] = flag
            newtasks.append(DialTask(flag, n))
            return True

        # How many dynamic dials are still wanted.
        need_dyn_dials = self.max_dyn_dials
        for p in peers.values():
            if p.rw.flags & dynDialedConn:  # conn.is(dynDialedConn) in geth
                need_dyn_dials -= 1
        for flag in self.dialing.values():
            if flag & dynDialedConn:
                need_dyn_dials -= 1

        self.hist.expire(now)

        # Static nodes that are not connected get dialed.
        for id, t in list(self.static.items()):
            err = self.check_dial(t.dest, peers)
            if err is errNotWhitelisted or err is errSelf:
                log.warn("Removing static dial candidate", id=t.dest.id,
                         addr=addr_str((t.dest.ip, t.dest.tcp)), err=err)
                del self.static[t.dest.id]
            elif err is None:
                self.dialing[id] = t.flags
                newtasks.append(t)

        # No peers at all for a while: try the bootnodes, one per round, in rotation.
        if (not peers and self.bootnodes and need_dyn_dials > 0
                and now - self.start > fallbackInterval):
            bootnode = self.bootnodes.pop(0)
            self.bootnodes.append(bootnode)
            if add_dial(dynDialedConn, bootnode):
                need_dyn_dials -= 1

        # Half of the wanted dynamic dials come from random table entries.
        random_candidates = need_dyn_dials // 2
        if random_candidates > 0:
            n = self.ntab.read_random_nodes(self.random_nodes)
            for i in range(min(random_candidates, n)):
                if add_dial(dynDialedConn, self.random_nodes[i]):
                    need_dyn_dials -= 1

        # The rest come from lookup results; the ones tried are dropped from the buffer.
        i = 0
        while i < len(self.lookup_buf) and need_dyn_dials > 0:
            if add_dial(dynDialedConn, self.lookup_buf[i]):
                need_dyn_dials -= 1
            i += 1
        del self.lookup_buf[:i]

        # Start a lookup if the buffer cannot cover the remaining need.
        if len(self.lookup_buf) < need_dyn_dials and not self.lookup_running:
            self.lookup_running = True
            newtasks.append(DiscoverTask())

        # Nothing to do and nothing running: wait for the oldest history entry to expire
        # so that the server loop wakes up again.
        if n_running == 0 and not newtasks and len(self.hist) > 0:
            newtasks.append(WaitExpireTask(self.hist.min().exp - now))
        return newtasks

    def check_dial(self, n: Node, peers) -> DialCheckError | None:
        """None if ``n`` may be dialed now, otherwise the reason (one of the err* values)."""
        if n.id in self.dialing:
            return errAlreadyDialing
        if peers and peers.get(n.id) is not None:
            return errAlreadyConnected
        if self.ntab is not None and n.id == self.ntab.self().id:
            return errSelf
        if self.netrestrict is not None and not self.netrestrict.contains(n.ip):
            return errNotWhitelisted
        if self.hist.contains(n.id):
            return errRecentlyDialed
        return None

    def task_done(self, t: Task, now: float) -> None:
        if isinstance(t, DialTask):
            self.hist.add(t.dest.id, now + dialHistoryExpiration)
            self.dialing.pop(t.dest.id, None)
        elif isinstance(t, DiscoverTask):
            self.lookup_running = False
            self.lookup_buf.extend(t.results)


def _fmt_duration(d: float) -> str:
    """Render seconds the way Go prints a time.Duration (``14s``, ``1m0s``, ``1.5s``)."""
    sign = "-" if d < 0 else ""
    d = abs(d)
    h, rem = divmod(d, 3600)
    m, s = divmod(rem, 60)
    secs = ("%.9f" % s).rstrip("0").rstrip(".") + "s"
    if h:
        return "%s%dh%dm%s" % (sign, h, m, secs)
    if m:
        return "%s%dm%s" % (sign, m, secs)
    return sign + secs


class DialError(Exception):
    """The dialer could not connect (as opposed to a failed handshake); wraps the cause."""

    def __init__(self, err: BaseException):
        super().__init__(str(err))
        self.err = err


class DialTask(Task):
    """Dials one node. Its fields belong to the running thread until the task is done."""

    __slots__ = ("flags", "dest", "last_resolved", "resolve_delay")

    def __init__(self, flags: ConnFlag, dest: Node, last_resolved: float | None = None,
                 resolve_delay: float = 0.0):
        self.flags = flags
        self.dest = dest
        self.last_resolved = last_resolved  # monotonic seconds, None = never (Go's zero time)
        self.resolve_delay = resolve_delay  # seconds, 0 = not yet set

    def do(self, srv) -> None:
        if self.dest.incomplete():
            if not self.resolve(srv):
                return
        err = self.dial(srv, self.dest)
        if err is not None:
            log.trace("Dial error", task=self, err=err)
            # A static node may have moved: look up its current endpoint and retry once.
            if isinstance(err, DialError) and self.flags & staticDialedConn:
                if self.resolve(srv):
                    self.dial(srv, self.dest)

    def resolve(self, srv) -> bool:
        """Find the destination's current endpoint through discovery.

        Attempts are spaced by a back-off that doubles on each miss (up to
        maxResolveDelay) and resets once the node is found.
        """
        if srv.ntab is None:
            log.debug("Can't resolve node", id=self.dest.id, err="discovery is disabled")
            return False
        if self.resolve_delay == 0:
            self.resolve_delay = initialResolveDelay
        if self.last_resolved is not None and _now() - self.last_resolved < self.resolve_delay:
            return False
        resolved = srv.ntab.resolve(self.dest.id)
        self.last_resolved = _now()
        if resolved is None:
            self.resolve_delay = min(self.resolve_delay * 2, maxResolveDelay)
            log.debug("Resolving node failed", id=self.dest.id, newdelay=_fmt_duration(self.resolve_delay))
            return False
        self.resolve_delay = initialResolveDelay
        self.dest = resolved
        log.debug("Resolved node", id=self.dest.id, addr=addr_str((self.dest.ip, self.dest.tcp)))
        return True

    def dial(self, srv, dest: Node):
        """Connect and hand the socket to the server. Returns None or the error (geth returns error).

        A failure of the dialer itself comes back wrapped in DialError.
        """
        try:
            fd = srv.dialer.dial(dest)
        except OSError as err:  # refused, unreachable, timed out: a dial error, as in geth
            return DialError(err)
        except Exception as err:  # a bug in the dialer: reported, and this dial fails
            log.error("Dialer failed", task=self, err=err, exc_info=err)
            return err
        mfd = new_metered_conn(fd, False)
        try:
            return srv.setup_conn(mfd, self.flags, dest)
        except Exception as err:  # setup_conn returns its errors: raising is a bug
            log.error("Setting up dialed connection failed", task=self, err=err, exc_info=err)
            try:
                mfd.close()
            except Exception:  # noqa: S110 - whatever it is, the error above is the one to return
                pass
            return err

    def __str__(self):
        return "%s %s %s" % (self.flags, bytes(self.dest.id)[:8].hex(),
                             addr_str((self.dest.ip, self.dest.tcp)))

    def __repr__(self):
        return "DialTask(flags=%s, dest=%s@%s, last_resolved=%r, resolve_delay=%r)" % (
            self.flags, bytes(self.dest.id)[:8].hex(), addr_str((self.dest.ip, self.dest.tcp)),
            self.last_resolved, self.resolve_delay)

    def __eq__(self, other):
        if not isinstance(other, DialTask):
            return NotImplemented
        return (self.flags == other.flags and self.dest == other.dest
                and self.last_resolved == other.last_resolved
                and self.resolve_delay == other.resolve_delay)


class DiscoverTask(Task):
    """Runs one random discovery lookup; only one is active at a time."""

    __slots__ = ("results",)

    def __init__(self, results: list | None = None):
        self.results = results if results is not None else []

    def do(self, srv) -> None:
        # Lookups are spaced lookupInterval apart so the loop does not spin. The wait ends
        # early when the server quits, in which case no lookup is made.
        if srv.last_lookup is not None:
            delay = srv.last_lookup + lookupInterval - _now()
            if delay > 0 and srv.quit.wait(delay):
                return
        if srv.quit.is_set():
            return
        srv.last_lookup = _now()
        target = NodeID(os.urandom(64))
        self.results = srv.ntab.lookup(target) or []  # a table may answer None (geth: nil)

    def __str__(self):
        s = "discovery lookup"
        if self.results:
            s += " (%d results)" % len(self.results)
        return s

    def __repr__(self):
        return "DiscoverTask(results=[%s])" % ", ".join(
            "%s@%s" % (bytes(n.id)[:8].hex(), addr_str((n.ip, n.tcp))) for n in self.results)

    def __eq__(self, other):
        if not isinstance(other, DiscoverTask):
            return NotImplemented
        return self.results == other.results


class WaitExpireTask(Task):
    """Keeps the server loop ticking until the oldest dial history entry expires."""

    __slots__ = ("duration",)

    def __init__(self, duration: float):
        self.duration = duration  # seconds

    def do(self, srv) -> None:
        srv.quit.wait(self.duration)  # time.Sleep in geth; returns at once when the server quits

    def __str__(self):
        return "wait for dial hist expire (%s)" % _fmt_duration(self.duration)

    def __repr__(self):
        return "WaitExpireTask(duration=%r)" % (self.duration,)

    def __eq__(self, other):
        if not isinstance(other, WaitExpireTask):
            return NotImplemented
        return self.duration == other.duration


class PastDial:
    """One entry of the dial history: node ``id`` may be dialed again after ``exp``."""

    __slots__ = ("id", "exp")

    def __init__(self, id: NodeID, exp: float):
        self.id = id
        self.exp = exp

    def __lt__(self, other: "PastDial") -> bool:  # heap order (geth's dialHistory.Less)
        return self.exp < other.exp

    def __eq__(self, other):
        return isinstance(other, PastDial) and self.id == other.id and self.exp == other.exp


    def __repr__(self):
        return "PastDial(id=%s, exp=%r)" % (bytes(self.id)[:8].hex(), self.exp)


class DialHistory:
    """Recently dialed nodes: a min-heap of ``PastDial`` ordered by expiry time.

    Use only ``min``, ``add``, ``remove``, ``contains`` and ``expire``; ``push`` and
    ``pop`` are the raw heap operations (``heapq`` on the backing list).
    """

    __slots__ = ("_h",)

    def __init__(self):
        self._h = []

    def min(self) -> "PastDial":
        return self._h[0]

    def add(self, id: NodeID, exp: float) -> None:
        self.push(PastDial(id, exp))

    def remove(self, id: NodeID) -> bool:
        h = self._h
        for i, v in enumerate(h):
            if v.id == id:
                last = h.pop()
                if i < len(h):
                    h[i] = last
                    heapq.heapify(h)
                return True
        return False

    def contains(self, id: NodeID) -> bool:
        for v in self._h:
            if v.id == id:
                return True
        return False

    def expire(self, now: float) -> None:
        h = self._h
        while h and h[0].exp < now:
            heapq.heappop(h)

    def __len__(self) -> int:
        return len(self._h)

    def __iter__(self):
        return iter(self._h)

    def push(self, x: "PastDial") -> None:
        heapq.heappush(self._h, x)

    def pop(self) -> "PastDial":
        return heapq.heappop(self._h)

    def __repr__(self):
        return "DialHistory(%r)" % (sorted(self._h),)
