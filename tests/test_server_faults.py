"""Faults that must not stop the node (issue 9, items 1-4 and 9), over loopback sockets.

Each test reproduces one fault that stopped (or silently crippled) the server
before: an accept() error, an exception inside Server.run, stop() with dials in
progress, a programming error in a connection's setup, dial or read loop, and a
burst of connections larger than a 128-connection listen backlog.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import queue
import select
import selectors
import socket
import subprocess
import sys
import textwrap
import threading
import time


from p2p import crypto, rlpx, server as srvmod
from p2p.discover.node import Node, new_node, pubkey_id
from p2p.peer import ProtoHandshake
from p2p.protocol import Cap
from p2p.server import Config, Server, errServerStopped

from tests.test_server import _close_fd, _newconn, _run_loop_only, newkey, random_id, TaskGen

WAIT = 10.0  # upper bound for a wait on a condition; never a sleep
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _Capture(logging.Handler):
    """Collects the records of the "p2p" loggers; ``wait_for`` blocks until one matches."""

    def __init__(self):
        super().__init__(logging.NOTSET)
        self.records = []
        self.cond = threading.Condition()

    def emit(self, record):
        with self.cond:
            self.records.append(record)
            self.cond.notify_all()

    def wait_for(self, pred, timeout=WAIT):
        with self.cond:
            ok = self.cond.wait_for(lambda: any(pred(r) for r in self.records), timeout)
        return ok

    def errors(self):
        with self.cond:
            return [r for r in self.records if r.levelno >= logging.ERROR]


@contextlib.contextmanager
def capture_logs(level=logging.DEBUG):
    lg = logging.getLogger("p2p")
    h = _Capture()
    old = lg.level
    lg.addHandler(h)
    lg.setLevel(level)
    try:
        yield h
    finally:
        lg.removeHandler(h)
        lg.setLevel(old)


def _msg(record) -> str:
    return str(record.msg)


def _listen_server(**cfg):
    config = Config(private_key=newkey(), max_peers=10, no_discovery=True, no_dial=True,
                    listen_addr="127.0.0.1:0")
    for k, v in cfg.items():
        setattr(config, k, v)
    return config


def _handshake(srv, prv=None, timeout=WAIT):
    """An honest peer's both handshakes with ``srv`` over loopback; returns the transport."""
    prv = prv or crypto.generate_key()
    host, port = srvmod.split_host_port(srv.listen_addr)
    fd = socket.create_connection((host, port), timeout=timeout)
    t = rlpx.new_rlpx(fd)
    t.do_enc_handshake(prv, Node(id=srv.self().id))
    t.do_proto_handshake(ProtoHandshake(version=5, name="peer", caps=[Cap("x", 1)],
                                        id=pubkey_id(prv.public_key)))
    return t


# ---------------------------------------------------------------------------
# item 1: accept() errors


_EMFILE_SCRIPT = textwrap.dedent('''
    import logging, os, resource, socket, sys, threading
    from p2p import crypto, rlpx
    from p2p.discover.node import Node, pubkey_id
    from p2p.peer import ProtoHandshake
    from p2p.server import Config, Server, split_host_port

    seen = threading.Event()

    class H(logging.Handler):
        def emit(self, rec):
            if "read error" in str(rec.msg).lower():
                seen.set()

    lg = logging.getLogger("p2p")
    lg.setLevel(logging.DEBUG)
    lg.addHandler(H())
    srv = Server(Config(private_key=crypto.generate_key(), max_peers=10, no_discovery=True,
                        no_dial=True, listen_addr="127.0.0.1:0"))
    srv.start()
    addr = split_host_port(srv.listen_addr)
    srv_id = srv.self().id

    def handshake():
        prv = crypto.generate_key()
        c = socket.create_connection(addr, timeout=10)
        t = rlpx.new_rlpx(c)
        t.do_enc_handshake(prv, Node(id=srv_id))
        t.do_proto_handshake(ProtoHandshake(version=5, name="p", id=pubkey_id(prv.public_key)))
        t.close(None)

    import queue
    events = queue.Queue()
    srv.subscribe_events(events)
    handshake()  # warm: every module the handshake needs is imported now
    # Wait until the node has closed that peer's socket: no fd may be freed from here on.
    while events.get(timeout=10).type != "drop":
        pass
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 32, hard))
    hold = []
    try:
        while True:
            hold.append(os.open("/dev/null", os.O_RDONLY))
    except OSError:
        pass
    os.close(hold.pop())
    # The blocked accept() already holds the fd for this connection; the next one cannot get any.
    first = socket.create_connection(addr, timeout=10)
    if not seen.wait(10):
        print("no accept error logged")
        sys.exit(1)
    first.close()
    for fd in hold:
        os.close(fd)
    handshake()  # a new peer connects again
    srv.stop()
    print("OK")
''')


def test_accept_survives_fd_exhaustion():
    """EMFILE from accept() is retried: after the fds are freed a new peer connects (subprocess, low RLIMIT_NOFILE)."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", _EMFILE_SCRIPT], capture_output=True, text=True,
                       timeout=120, cwd=ROOT, env=env)
    assert r.returncode == 0 and r.stdout.strip().endswith("OK"), (r.stdout, r.stderr[-3000:])


def test_accept_error_classification():
    for e in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.ECONNABORTED, errno.EINTR):
        assert srvmod._temporary_accept_error(OSError(e, os.strerror(e))), errno.errorcode[e]
    for e in (errno.EBADF, errno.EINVAL, errno.ENOTSOCK):
        assert not srvmod._temporary_accept_error(OSError(e, os.strerror(e))), errno.errorcode[e]


# ---------------------------------------------------------------------------
# item 2: an exception inside Server.run


class _Boom(Exception):
    pass


def test_run_loop_survives_failing_dialer():
    """new_tasks raising: logged with traceback, the loop goes on answering and dialing."""
    calls = [0]
    fail_at = {2, 3}

    def new_func(running, peers):
        calls[0] += 1
        if calls[0] in fail_at:
            raise _Boom("dialer bug %d" % calls[0])
        return []

    srv = Server(Config(max_peers=10, private_key=newkey()))
    with capture_logs() as logs:
        returned = _run_loop_only(srv, TaskGen(new_func, lambda t: None))
        try:
            for _ in range(5):
                assert srv.peers() == []
                assert srv.peer_count() == 0
            assert calls[0] >= 5
            errs = logs.errors()
            assert len(errs) == 2 and all(isinstance(r.exc_info[1], _Boom) for r in errs), errs
        finally:
            srv.stop()
        assert returned.wait(WAIT)


def test_run_loop_survives_failing_message():
    """A peerOp that raises is answered and logged; checkpoints keep working after it."""
    srv = Server(Config(max_peers=10, private_key=newkey()))
    fds = []
    with capture_logs() as logs:
        _run_loop_only(srv, TaskGen(lambda running, peers: [], lambda t: None))
        try:
            done = srvmod._Reply(srv.quit)

            def bad_op(peers):
                raise _Boom("op bug")

            assert srv._post("peerOp", (bad_op, done))
            assert done.get(WAIT) is None  # answered although it failed
            c = _newconn(random_id(), fds)
            assert srv.checkpoint(c, "posthandshake") is None
            assert srv.peer_count() == 0
            assert any(isinstance(r.exc_info[1], _Boom) for r in logs.errors() if r.exc_info)
        finally:
            srv.stop()
            for fd in fds:
                fd.close()


class _Fatal(BaseException):
    """Something Server.run cannot handle and go on after (not an Exception)."""


def test_run_loop_failure_shuts_down_cleanly():
    """When run cannot go on: quit is set, waiters get errServerStopped, peers() returns, threads end."""
    gate = threading.Event()

    def new_func(running, peers):
        if gate.is_set():
            raise _Fatal("loop cannot go on")
        return []

    srv = Server(Config(max_peers=10, private_key=newkey()))
    with capture_logs() as logs:
        returned = _run_loop_only(srv, TaskGen(new_func, lambda t: None))
        fds = []
        try:
            assert srv.peer_count() == 0
            gate.set()
            assert srv.peer_count() == 0  # this message makes run go round and fail
            assert returned.wait(WAIT), "run did not end"
            c = _newconn(random_id(), fds)
            assert srv.checkpoint(c, "posthandshake") is errServerStopped
            assert srv.quit.is_set()
            assert srv.peers() == [] and srv.peer_count() == 0
            assert srv.checkpoint(_newconn(random_id(), fds), "addpeer") is errServerStopped
            assert any(isinstance(r.exc_info[1], _Fatal) for r in logs.errors() if r.exc_info)
        finally:
            t0 = time.monotonic()
            srv.stop()
            assert time.monotonic() - t0 < 5.0
            for fd in fds:
                fd.close()


def test_reply_wait_watches_quit():
    """A caller waiting for run's answer returns errServerStopped as soon as quit is set."""
    gate = threading.Event()
    entered = threading.Event()

    def new_func(running, peers):
        if entered.is_set():
            gate.wait(WAIT)  # run is stuck here until the test lets it go
        entered.set()
        return []

    srv = Server(Config(max_peers=10, private_key=newkey()))
    returned = _run_loop_only(srv, TaskGen(new_func, lambda t: None))
    fds = []
    try:
        assert srv.peer_count() == 0  # one round done; the next one blocks in new_tasks
        results = queue.Queue()
        c = _newconn(random_id(), fds)
        threading.Thread(target=lambda: results.put(srv.checkpoint(c, "posthandshake")),
                         name="test.checkpoint", daemon=True).start()
        threading.Thread(target=lambda: results.put(srv.peers()), name="test.peers", daemon=True).start()
        srv.quit.set()
        got = [results.get(timeout=WAIT), results.get(timeout=WAIT)]
        assert errServerStopped in got and [] in got
    finally:
        gate.set()
        srv._mailbox.put(("quit", None))
        assert returned.wait(WAIT)
        srv.stop()
        for fd in fds:
            fd.close()


# ---------------------------------------------------------------------------
# item 3: stop() with dials in progress


@contextlib.contextmanager
def blackhole():
    """A loopback listener that never accepts, its backlog full: new connects hang in SYN_SENT."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    fill = []
    try:
        # Fill the accept queue: connects that complete at once.
        while True:
            s = socket.socket()
            s.setblocking(False)
            fill.append(s)
            if s.connect_ex(lst.getsockname()) not in (0, errno.EINPROGRESS):
                break
            p = select.poll()
            p.register(s, select.POLLOUT)
            if not p.poll(500) or s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                break  # this one did not complete: the queue is full
        yield lst.getsockname()
    finally:
        for s in fill:
            s.close()
        lst.close()


def test_stop_returns_with_dials_in_progress():
    with blackhole() as (host, port):
        static = [new_node(random_id(), host, 0, port) for _ in range(3)]
        srv = Server(_listen_server(no_dial=False, static_nodes=static, listen_addr=""))
        srv.start()
        dialer = srv._own_dialer
        with dialer._cond:  # the three dials are inside connect()
            assert dialer._cond.wait_for(lambda: len(dialer._connecting) == 3, WAIT), "dials did not start"
        t0 = time.monotonic()
        srv.stop()
        took = time.monotonic() - t0
        assert took < 1.0, "stop() took %.2f s with 3 dials in progress" % took


# ---------------------------------------------------------------------------
# item 4: programming errors are not network errors


class _BuggyTransport:
    def __init__(self, fd):
        self.fd = fd

    def do_enc_handshake(self, prv, dial_dest):
        raise ZeroDivisionError("bug in the handshake")

    def close(self, err):
        _close_fd(self.fd)


def test_bug_in_setup_conn_logged_with_traceback():
    made = []
    good = []

    def new_transport(fd):
        if not made:
            made.append(fd)
            return _BuggyTransport(fd)
        good.append(fd)
        return rlpx.new_rlpx(fd)

    srv = Server(_listen_server(), new_transport=new_transport)
    with capture_logs(logging.ERROR) as logs:
        srv.start()
        try:
            host, port = srvmod.split_host_port(srv.listen_addr)
            c = socket.create_connection((host, port), timeout=WAIT)
            c.settimeout(WAIT)
            assert c.recv(10) == b""  # only that connection is closed
            c.close()
            assert logs.wait_for(lambda r: r.exc_info and isinstance(r.exc_info[1], ZeroDivisionError))
            _handshake(srv).close(None)  # the next connection works
        finally:
            srv.stop()


def test_bug_in_dialer_logged_with_traceback():
    from p2p.dial import DialTask, dynDialedConn

    class BuggyDialer:
        def dial(self, dest):
            raise TypeError("bug in the dialer")

    class Srv:
        dialer = BuggyDialer()

    node = new_node(random_id(), "127.0.0.1", 0, 1)
    with capture_logs(logging.ERROR) as logs:
        err = DialTask(dynDialedConn, node).dial(Srv(), node)
    assert isinstance(err, TypeError)
    assert any(r.exc_info and isinstance(r.exc_info[1], TypeError) for r in logs.errors())


def test_network_errors_stay_quiet():
    """A refused dial and junk on an inbound connection are logged below error level."""
    from p2p.dial import DialError, DialTask, dynDialedConn

    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    port = lst.getsockname()[1]
    lst.close()  # nothing listens there now: connection refused
    srv = Server(_listen_server())
    node = new_node(random_id(), "127.0.0.1", 0, port)
    with capture_logs(5) as logs:  # 5: trace
        srv.start()
        try:
            err = DialTask(dynDialedConn, node).dial(srv, node)
            assert isinstance(err, DialError)
            host, lport = srvmod.split_host_port(srv.listen_addr)
            c = socket.create_connection((host, lport), timeout=WAIT)
            c.sendall(os.urandom(400))
            c.shutdown(socket.SHUT_WR)
            c.settimeout(WAIT)
            assert c.recv(10) == b""
            c.close()
            assert logs.wait_for(lambda r: _msg(r).startswith("Failed RLPx handshake"))
        finally:
            srv.stop()
    assert logs.errors() == []


def test_bug_in_peer_read_loop_logged_with_traceback():
    """read_msg raising a non-network error ends that peer only, logged at error level."""
    from p2p.message import send
    from p2p.peer import PeerEventTypeAdd, PeerEventTypeDrop
    from p2p.protocol import Protocol

    def new_transport(fd):
        t = rlpx.new_rlpx(fd)
        real = t.read_msg

        def read_msg():
            msg = real()
            if msg.code >= 16:  # the first sub-protocol message
                raise KeyError("bug in the read loop")
            return msg

        t.read_msg = read_msg
        return t

    def run(peer, rw):
        while True:
            rw.read_msg().discard()

    srv = Server(_listen_server(protocols=[Protocol(name="x", version=1, length=1, run=run)]),
                 new_transport=new_transport)
    events = queue.Queue()
    with capture_logs(logging.ERROR) as logs:
        srv.start()
        sub = srv.subscribe_events(events)
        try:
            prv = crypto.generate_key()
            a = _handshake(srv, prv)
            b = _handshake(srv)
            assert [events.get(timeout=WAIT).type for _ in range(2)] == [PeerEventTypeAdd] * 2
            send(a, 16, [b"hi"])
            ev = events.get(timeout=WAIT)
            assert ev.type == PeerEventTypeDrop and bytes(ev.peer) == bytes(pubkey_id(prv.public_key))
            assert logs.wait_for(lambda r: r.exc_info and isinstance(r.exc_info[1], KeyError))
            assert srv.peer_count() == 1  # the other peer is still there
            b.close(None)
            a.close(None)
        finally:
            sub.unsubscribe()
            srv.stop()


# ---------------------------------------------------------------------------
# item 9: the listen backlog


def test_listen_backlog_is_system_maximum():
    """300 connects while the server takes none: all complete (a 128 backlog drops the rest at SYN)."""
    release = threading.Event()

    class Stuck:
        def __init__(self, fd):
            self.fd = fd

        def do_enc_handshake(self, prv, dial_dest):
            release.wait(WAIT)
            raise ConnectionError("released")

        def close(self, err):
            _close_fd(self.fd)

    srv = Server(_listen_server(max_pending_peers=1), new_transport=Stuck)
    srv.start()
    socks = []
    try:
        host, port = srvmod.split_host_port(srv.listen_addr)
        for _ in range(300):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex((host, port))
            socks.append(s)
        sel = selectors.DefaultSelector()
        for s in socks:
            sel.register(s, selectors.EVENT_WRITE)
        established = 0
        # Completed connects are writable at once; dropped SYNs are retried after 1 s,
        # and the queue is still full then.
        deadline = time.monotonic() + 3.0
        while sel.get_map() and time.monotonic() < deadline:
            for key, _ in sel.select(max(0.0, deadline - time.monotonic())):
                sel.unregister(key.fileobj)
                if key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    established += 1
        sel.close()
        assert established == 300, "only %d of 300 connects completed" % established
        assert srvmod._max_listener_backlog() >= 300
    finally:
        release.set()
        for s in socks:
            s.close()
        srv.stop()


def test_handshake_workers_never_queue_behind_busy_ones(monkeypatch):
    """An accepted connection starts its handshake at once while handshake slots are free.

    The inbound handshake workers (departure handshake-workers) once counted themselves
    busy only after taking a connection off their queue: a free worker that had just
    been handed one still counted as free, so a second connection accepted before it
    woke up was queued for it too and waited behind the first one's handshake (up to
    handshakeTimeout for a silent peer) although free slots were left. Each round here
    frees a worker (a connection that fails at once), then opens two connections whose
    handshakes block. The hook pauses a worker's own bookkeeping (if it has any) for
    50 ms so that the listener accepts the second connection inside that window; the
    pause only widens the window, nothing waits on it.
    """
    release = threading.Event()
    started: "queue.Queue" = queue.Queue()
    done: "queue.Queue" = queue.Queue()

    class Transport:
        def __init__(self, fd):
            self.fd = fd

        def do_enc_handshake(self, prv, dial_dest):
            kind = self.fd.recv(1)
            if kind != b"s":
                raise ConnectionError("junk")
            started.put(self.fd)
            release.wait(WAIT)
            raise ConnectionError("released")

        def close(self, err):
            _close_fd(self.fd)
            done.put(self.fd)

    class SlowCounter(srvmod._Counter):
        __slots__ = ()

        def add(self, n):
            if n < 0 and threading.current_thread().name.endswith("SetupConn"):
                threading.Event().wait(0.05)
            super().add(n)

    monkeypatch.setattr(srvmod, "_Counter", SlowCounter)
    rounds = 4
    srv = Server(_listen_server(max_pending_peers=4 * rounds), new_transport=Transport)
    socks = []
    srv.start()
    try:
        host, port = srvmod.split_host_port(srv.listen_addr)
        for r in range(rounds):
            junk = socket.create_connection((host, port), timeout=WAIT)
            junk.sendall(b"j")
            socks.append(junk)
            done.get(timeout=WAIT)  # its worker is free again
            for _ in range(2):
                s = socket.create_connection((host, port), timeout=WAIT)
                s.sendall(b"s")
                socks.append(s)
            for k in range(2):
                try:
                    started.get(timeout=WAIT)
                except queue.Empty:
                    raise AssertionError("round %d: %d of 2 stuck handshakes started, with %d "
                                         "slots free" % (r + 1, k, 4 * rounds - 2 * r - k)) from None
    finally:
        release.set()
        for s in socks:
            s.close()
        srv.stop()
