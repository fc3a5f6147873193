"""Tests of p2p/server.py: twins of geth's server_test.go, then more."""

from __future__ import annotations

import os
import queue
import socket
import threading

import pytest

from p2p import crypto, peer_error, rlpx, server as srvmod
from p2p.discover.node import NodeID, new_node, pubkey_id
from p2p.netutil import addr_str
from p2p.peer import ProtoHandshake
from p2p.protocol import Protocol
from p2p.server import (
    Config,
    Server,
    Conn,
    dynDialedConn,
    errServerStopped,
    inboundConn,
    maxActiveDialTasks,
    trustedConn,
)

WAIT = 5.0  # upper bound for things that happen at once; never a sleep
ZERO16 = bytes(16)


# ---------------------------------------------------------------------------
# helpers, in server_test.go's order


def new_test_transport(id, fd):
    """A real rlpx transport whose frames use all-zero secrets, and fake handshakes."""
    return TestTransport(id, fd)


class TestTransport:
    __test__ = False  # a helper, not a pytest class

    def __init__(self, id, fd):
        self.id = id
        self.rlpx = rlpx.new_rlpx(fd)
        self.rlpx.rw = rlpx.new_rlpx_frame_rw(self.rlpx.conn, rlpx.Secrets(
            mac=ZERO16, aes=ZERO16, ingress_mac=crypto.new_keccak256(), egress_mac=crypto.new_keccak256()))
        self.close_err = None

    def do_enc_handshake(self, prv, dial_dest):
        return self.id

    def do_proto_handshake(self, our):
        return ProtoHandshake(id=self.id, name="test")

    def read_msg(self):
        return self.rlpx.read_msg()

    def write_msg(self, msg):
        return self.rlpx.write_msg(msg)

    def close(self, err):
        _close_fd(self.rlpx.fd)
        self.close_err = err


def _close_fd(fd):
    try:
        fd.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    fd.close()


def start_test_server(id, pf, **cfg):
    config = Config(name="test", max_peers=10, listen_addr="127.0.0.1:0", private_key=newkey(),
                    no_discovery=True)
    for k, v in cfg.items():
        setattr(config, k, v)
    server = Server(config, new_peer_hook=pf,
                    new_transport=lambda fd: new_test_transport(id, fd))
    server.start()
    return server


# ---------------------------------------------------------------------------
# geth's tests


def test_server_listen():
    connected = queue.Queue()
    remid = random_id()

    def hook(p):
        assert p is not None
        assert p.id() == remid, "peer func called with wrong node id"
        connected.put(p)

    srv = start_test_server(remid, hook)
    try:
        host, port = srvmod.split_host_port(srv.listen_addr)
        c = socket.create_connection((host, port), timeout=WAIT)
        try:
            peer = connected.get(timeout=WAIT)
            assert addr_str(peer.local_addr()) == addr_str(c.getpeername())
            assert srv.peers() == [peer]
            assert srv.peer_count() == 1
        finally:
            c.close()
    finally:
        srv.stop()


def test_server_dial():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    accepted = queue.Queue()

    def accept():
        try:
            fd, _ = listener.accept()
        except OSError:
            return
        accepted.put(fd)

    t = threading.Thread(target=accept, name="test.accept", daemon=True)
    t.start()

    connected = queue.Queue()
    remid = random_id()
    srv = start_test_server(remid, connected.put)
    try:
        host, port = listener.getsockname()
        srv.add_peer(new_node(remid, host, 0, port))
        fd = accepted.get(timeout=WAIT)
        try:
            peer = connected.get(timeout=WAIT)
            assert peer.id() == remid
            assert peer.name() == "test"
            assert addr_str(peer.remote_addr()) == addr_str(fd.getsockname())
            assert srv.peers() == [peer]
        finally:
            fd.close()
    finally:
        srv.stop()
        listener.close()
        t.join(WAIT)


def test_server_task_scheduling():
    done = queue.Queue()
    tc = [0]

    def new_func(running, peers):
        tc[0] += 1
        return [TestTask(tc[0] - 1)]

    srv = Server(Config(max_peers=10))
    returned = _run_loop_only(srv, TaskGen(new_func, done.put))
    gotdone = [done.get(timeout=WAIT) for _ in range(100)]
    for i, task in enumerate(gotdone):
        assert task.index == i, "task %d has wrong index, got %d" % (i, task.index)
        assert task.called, "task %d was not called" % i
    srv.stop()
    assert returned.wait(WAIT), "Server.run did not return"


def test_server_many_tasks():
    alltasks = [TestTask(i) for i in range(300)]
    bounds = [0, 0]

    def new_func(running, peers):
        start, end = bounds[1], min(bounds[1] + maxActiveDialTasks + 10, len(alltasks))
        bounds[:] = [start, end]
        return alltasks[start:end]

    done = queue.Queue()
    srv = Server(Config())
    _run_loop_only(srv, TaskGen(new_func, done.put))
    try:
        doneset = set()
        while len(doneset) < len(alltasks):
            try:
                tt = done.get(timeout=WAIT)
            except queue.Empty:
                missing = sorted(set(range(len(alltasks))) - doneset)
                pytest.fail("%d of %d tasks got done; missing %s" % (len(doneset), len(alltasks), missing[:20]))
            assert tt.index not in doneset, "task %d got done more than once" % tt.index
            doneset.add(tt.index)
    finally:
        srv.stop()


class TaskGen:
    def __init__(self, new_func, done_func):
        self.new_func = new_func
        self.done_func = done_func

    def new_tasks(self, running, peers, now):
        return self.new_func(running, peers)

    def task_done(self, t, now):
        self.done_func(t)

    def add_static(self, n):
        pass

    def remove_static(self, n):
        pass


class TestTask:
    __test__ = False  # geth's testTask, not a pytest test class

    def __init__(self, index):
        self.index = index
        self.called = False

    def do(self, srv):
        self.called = True


class FakeTable:
    def self(self):
        return new_node(NodeID(), "127.0.0.1", 0, 0)

    def close(self):
        pass

    def resolve(self, target):
        return None

    def lookup(self, target):
        return []

    def read_random_nodes(self, buf):
        return 0


def _run_loop_only(srv, dialstate):
    """Start only Server.run, as geth's tests do with a Server that never started."""
    srv.running = True
    srv.ntab = FakeTable()
    with srv._post_lock:
        srv._closed = False
    returned = threading.Event()

    def body():
        try:
            srv.run(dialstate)
        finally:
            returned.set()

    t = threading.Thread(target=body, name="p2p.Server.run", daemon=True)
    srv._loop_threads.append(t)
    t.start()
    return returned


def _newconn(id, fds, flags=inboundConn):
    fd, other = socket.socketpair()
    fds += [fd, other]
    tx = new_test_transport(id, fd)
    return Conn(fd, tx, flags, id=id)


def test_server_at_cap():
    trusted_id = random_id()
    srv = Server(Config(private_key=newkey(), max_peers=10, no_dial=True, no_discovery=True,
                        trusted_nodes=[new_node(trusted_id, None, 0, 0)]))
    srv.start()
    fds = []
    try:
        # Fill the peer set.
        for i in range(10):
            c = _newconn(random_id(), fds)
            err = srv.checkpoint(c, "addpeer")
            assert err is None, "could not add conn %d: %s" % (i, err)
        # A non-trusted connection is refused...
        c = _newconn(random_id(), fds)
        assert srv.checkpoint(c, "posthandshake") == peer_error.DiscTooManyPeers
        # ...a trusted one gets in and is flagged.
        c = _newconn(trusted_id, fds)
        assert srv.checkpoint(c, "posthandshake") is None
        assert c.is_(trustedConn), "Server did not set trusted flag"
        assert srv.peer_count() == 10
    finally:
        srv.stop()
        for fd in fds:
            fd.close()


def test_server_peer_limits():
    """MaxPeers=0 refuses everyone; a trusted node gets past the limit until it is untrusted again."""
    srvkey = newkey()
    clientid = random_id()
    clientnode = new_node(clientid, None, 0, 0)
    # The handshake offers no capabilities, so a trusted node that gets past the limit
    # is refused next as useless: that is how the test sees the limit was bypassed.
    tp = SetupTransport(clientid, phs=ProtoHandshake(id=clientid))
    flags = dynDialedConn
    dial_dest = new_node(clientid, None, 0, 0)
    srv = Server(Config(private_key=srvkey, max_peers=0, no_dial=True, no_discovery=True,
                        protocols=[_discard_protocol()]),
                 new_transport=lambda fd: tp)
    srv.start()
    try:
        def setup_once():
            tp.close_err = None
            a, b = socket.socketpair()
            try:
                srv.setup_conn(a, flags, dial_dest)
            finally:
                a.close()
                b.close()
            return tp.close_err

        assert setup_once() == peer_error.DiscTooManyPeers  # the server is full
        srv.add_trusted_peer(clientnode)
        err = setup_once()
        assert err != peer_error.DiscTooManyPeers, "a trusted node did not bypass max_peers"
        assert err == peer_error.DiscUselessPeer
        srv.remove_trusted_peer(clientnode)
        assert setup_once() == peer_error.DiscTooManyPeers  # full again
    finally:
        srv.stop()


def test_server_setup_conn():
    id = random_id()
    srvkey = newkey()
    srvid = pubkey_id(srvkey.public_key)
    read_error = OSError("read error")
    foo = ValueError("foo")
    tests = [
        dict(dontstart=True, tt=SetupTransport(id), flags=0,
             want_calls="close,", want_close_err=errServerStopped),
        dict(tt=SetupTransport(id, enc_handshake_err=read_error), flags=inboundConn,
             want_calls="doEncHandshake,close,", want_close_err=read_error),
        dict(tt=SetupTransport(id), dial_dest=new_node(random_id(), None, 0, 0), flags=dynDialedConn,
             want_calls="doEncHandshake,close,", want_close_err=peer_error.DiscUnexpectedIdentity),
        dict(tt=SetupTransport(id, phs=ProtoHandshake(id=random_id())), dial_dest=new_node(id, None, 0, 0),
             flags=dynDialedConn,
             want_calls="doEncHandshake,doProtoHandshake,close,", want_close_err=peer_error.DiscUnexpectedIdentity),
        dict(tt=SetupTransport(id, proto_handshake_err=foo), dial_dest=new_node(id, None, 0, 0),
             flags=dynDialedConn,
             want_calls="doEncHandshake,doProtoHandshake,close,", want_close_err=foo),
        dict(tt=SetupTransport(srvid, phs=ProtoHandshake(id=srvid)), flags=inboundConn,
             want_calls="doEncHandshake,close,", want_close_err=peer_error.DiscSelf),
        dict(tt=SetupTransport(id, phs=ProtoHandshake(id=id)), flags=inboundConn,
             want_calls="doEncHandshake,doProtoHandshake,close,", want_close_err=peer_error.DiscUselessPeer),
    ]
    for i, test in enumerate(tests):
        tt = test["tt"]
        srv = Server(Config(private_key=srvkey, max_peers=10, no_dial=True, no_discovery=True,
                            protocols=[_discard_protocol()]),
                     new_transport=lambda fd, tt=tt: tt)
        if not test.get("dontstart"):
            srv.start()
        p1, p2 = socket.socketpair()
        try:
            srv.setup_conn(p1, test["flags"], test.get("dial_dest"))
        finally:
            srv.stop()
            p1.close()
            p2.close()
        want = test["want_close_err"]
        if isinstance(want, peer_error.DiscReason):
            assert tt.close_err == want, "test %d: close error mismatch: got %r, want %r" % (i, tt.close_err, want)
        else:
            assert tt.close_err is want, "test %d: close error mismatch: got %r, want %r" % (i, tt.close_err, want)
        assert tt.calls == test["want_calls"], "test %d: calls mismatch: got %r" % (i, tt.calls)


class SetupTransport:
    def __init__(self, id, enc_handshake_err=None, phs=None, proto_handshake_err=None):
        self.id = id
        self.enc_handshake_err = enc_handshake_err
        self.phs = phs
        self.proto_handshake_err = proto_handshake_err
        self.calls = ""
        self.close_err = None

    def do_enc_handshake(self, prv, dial_dest):
        self.calls += "doEncHandshake,"
        if self.enc_handshake_err is not None:
            raise self.enc_handshake_err
        return self.id

    def do_proto_handshake(self, our):
        self.calls += "doProtoHandshake,"
        if self.proto_handshake_err is not None:
            raise self.proto_handshake_err
        return self.phs

    def close(self, err):
        self.calls += "close,"
        self.close_err = err

    # setup_conn must not touch the message stream.
    def write_msg(self, msg):
        raise AssertionError("write_msg called on setupTransport")

    def read_msg(self):
        raise AssertionError("read_msg called on setupTransport")


def _discard_run(peer, rw):
    while True:
        msg = rw.read_msg()
        msg.discard()


def _discard_protocol():
    return Protocol(name="discard", version=1, length=1, run=_discard_run)


def newkey():
    return crypto.generate_key()


def random_id():
    return NodeID(os.urandom(64))


# ---------------------------------------------------------------------------
# beyond geth


def test_enc_handshake_checks():
    """The inbound/dialed ratio, trusted bypass, duplicate and self checks."""
    key = newkey()
    srv = Server(Config(private_key=key, max_peers=6, dial_ratio=3))
    assert srv.max_dialed_conns() == 2
    assert srv.max_inbound_conns() == 4
    fds = []
    try:
        peers = {}
        c = _newconn(random_id(), fds)
        assert srv.enc_handshake_checks(peers, 4, c) == peer_error.DiscTooManyPeers
        c.set(trustedConn, True)
        assert srv.enc_handshake_checks(peers, 4, c) is None
        c.set(trustedConn, False)
        assert not c.is_(trustedConn)
        assert srv.enc_handshake_checks(peers, 3, c) is None
        peers[c.id] = object()
        assert srv.enc_handshake_checks(peers, 0, c) == peer_error.DiscAlreadyConnected
        me = _newconn(pubkey_id(key.public_key), fds, flags=dynDialedConn)
        assert srv.enc_handshake_checks({}, 0, me) == peer_error.DiscSelf
        full = {NodeID(os.urandom(64)): object() for _ in range(6)}
        assert srv.enc_handshake_checks(full, 0, _newconn(random_id(), fds, dynDialedConn)) \
            == peer_error.DiscTooManyPeers
        static = _newconn(random_id(), fds, srvmod.staticDialedConn)
        assert srv.enc_handshake_checks(full, 0, static) is None
    finally:
        for fd in fds:
            fd.close()
    assert Server(Config(max_peers=6, no_dial=True)).max_dialed_conns() == 0
    assert Server(Config(max_peers=6, no_discovery=True)).max_dialed_conns() == 0
    assert Server(Config(max_peers=7)).max_dialed_conns() == 2


def test_conn_string():
    l = socket.socket()
    l.bind(("127.0.0.1", 0))
    l.listen(1)
    a = socket.create_connection(l.getsockname())
    b, _ = l.accept()
    try:
        id = random_id()
        c = Conn(a, None, inboundConn | trustedConn, id=id)
        s = str(c)
        assert s.startswith("trusted-inbound " + id.hex())
        assert s.endswith(addr_str(b.getsockname()))
    finally:
        a.close()
        b.close()
        l.close()


def test_truncate_name():
    assert srvmod.truncate_name("short") == "short"
    assert srvmod.truncate_name("x" * 21) == "x" * 20 + "..."


def test_split_host_port():
    assert srvmod.split_host_port(":30303") == ("", 30303)
    assert srvmod.split_host_port("127.0.0.1:0") == ("127.0.0.1", 0)
    assert srvmod.split_host_port("[::1]:9") == ("::1", 9)
    for bad in ("30303", "1.2.3.4:x", "::1:5", "h:70000"):
        with pytest.raises(ValueError):
            srvmod.split_host_port(bad)


def test_server_start_errors():
    with pytest.raises(ValueError):
        Server(Config(max_peers=1, no_discovery=True)).start()
    srv = Server(Config(private_key=newkey(), no_discovery=True, listen_addr="127.0.0.1:0"))
    srv.start()
    try:
        with pytest.raises(RuntimeError):
            srv.start()
    finally:
        srv.stop()
    srv.stop()  # a second stop is a no-op


def test_server_listen_port_resolved_and_self():
    key = newkey()
    srv = Server(Config(private_key=key, no_discovery=True, listen_addr="127.0.0.1:0", name="me"))
    assert srv.self().ip.is_unspecified  # not running yet
    srv.start()
    try:
        host, port = srvmod.split_host_port(srv.listen_addr)
        assert host == "127.0.0.1" and port != 0
        me = srv.self()
        assert me.id == pubkey_id(key.public_key)
        assert str(me.ip) == "127.0.0.1" and me.tcp == port
        info = srv.node_info()
        assert info.name == "me" and info.enode == str(me) and info.ports["listener"] == port
        assert srv.peers_info() == []
    finally:
        srv.stop()


class _BlockingTransport:
    """Blocks in the encryption handshake reading the socket, like a silent client makes rlpx do."""

    def __init__(self, fd, started):
        self.fd = fd
        self.started = started
        self.close_err = None

    def do_enc_handshake(self, prv, dial_dest):
        self.started.set()
        data = self.fd.recv(1)
        raise ConnectionError("handshake read ended: %r" % data)

    def close(self, err):
        self.close_err = err
        _close_fd(self.fd)


def test_server_stop_wakes_pending_handshake():
    """A client that connects and sends nothing must not keep stop() waiting."""
    started = threading.Event()
    made = []

    def new_transport(fd):
        t = _BlockingTransport(fd, started)
        made.append(t)
        return t

    srv = Server(Config(private_key=newkey(), max_peers=10, no_discovery=True, listen_addr="127.0.0.1:0"),
                 new_transport=new_transport)
    srv.start()
    host, port = srvmod.split_host_port(srv.listen_addr)
    c = socket.create_connection((host, port), timeout=WAIT)
    try:
        assert started.wait(WAIT)
        srv.stop()  # must shut the socket down to wake the read
        assert made[0].close_err is not None
        c.settimeout(WAIT)
        assert c.recv(10) == b""
    finally:
        c.close()


def test_server_net_restrict_rejects_inbound():
    from p2p.netutil.net import Netlist

    nl = Netlist()
    nl.add("10.0.0.0/8")
    srv = start_test_server(random_id(), None, net_restrict=nl)
    try:
        host, port = srvmod.split_host_port(srv.listen_addr)
        c = socket.create_connection((host, port), timeout=WAIT)
        c.settimeout(WAIT)
        try:
            assert c.recv(10) == b""  # closed at once
        except ConnectionResetError:
            pass
        finally:
            c.close()
        assert srv.peer_count() == 0
    finally:
        srv.stop()


def test_server_peer_events_and_remove_peer():
    """subscribe_events sees add and drop; remove_peer disconnects a static peer."""
    connected = queue.Queue()
    remid = random_id()
    srv = start_test_server(remid, connected.put)
    events = queue.Queue()
    sub = srv.subscribe_events(events)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    try:
        host, port = listener.getsockname()
        node = new_node(remid, host, 0, port)
        srv.add_peer(node)
        fd, _ = listener.accept()
        try:
            connected.get(timeout=WAIT)
            ev = events.get(timeout=WAIT)
            assert ev.type == "add" and ev.peer == remid
            srv.remove_peer(node)
            ev = events.get(timeout=WAIT)
            assert ev.type == "drop" and ev.peer == remid
            assert ev.error == str(peer_error.DiscRequested)
        finally:
            fd.close()
    finally:
        sub.unsubscribe()
        srv.stop()
        listener.close()


class FakeNAT:
    """A nat.Interface that records its calls."""

    def __init__(self, ext):
        self.ext = ext
        self.lock = threading.Lock()
        self.added = []
        self.deleted = []
        self.mapped = threading.Semaphore(0)

    def add_mapping(self, protocol, extport, intport, name, lifetime):
        with self.lock:
            self.added.append((protocol.lower(), extport, intport, name))
        self.mapped.release()

    def delete_mapping(self, protocol, extport, intport):
        with self.lock:
            self.deleted.append((protocol.lower(), extport, intport))

    def external_ip(self):
        import ipaddress

        return ipaddress.ip_address(self.ext)

    def __str__(self):
        return "fake"


def test_server_nat_maps_ports_and_announces_external_ip():
    # 0.0.0.0 is not loopback, so the ports get mapped; nothing is ever sent.
    m = FakeNAT("203.0.113.7")
    key = newkey()
    srv = Server(Config(private_key=key, max_peers=1, listen_addr="0.0.0.0:0", nat=m, no_dial=True))
    srv.start()
    try:
        port = srvmod.split_host_port(srv.listen_addr)[1]
        assert m.mapped.acquire(timeout=WAIT) and m.mapped.acquire(timeout=WAIT)
        with m.lock:
            assert sorted(a[:3] for a in m.added) == [("tcp", port, port), ("udp", port, port)]
        me = srv.self()
        assert str(me.ip) == "203.0.113.7"
        assert me.udp == port and me.tcp == port
        assert me.id == pubkey_id(key.public_key)
    finally:
        srv.stop()
    # stop ended both nat.map threads, which delete their mappings on the way out
    assert sorted(m.deleted) == [("tcp", port, port), ("udp", port, port)]


def test_server_nat_loopback_not_mapped():
    m = FakeNAT("198.51.100.1")
    srv = Server(Config(private_key=newkey(), listen_addr="127.0.0.1:0", nat=m, no_discovery=True))
    srv.start()
    try:
        assert str(srv.self().ip) == "198.51.100.1"
    finally:
        srv.stop()
    assert m.added == [] and m.deleted == []


def _pair(protocols_a, protocols_b, **cfg_a):
    """Two started servers with real RLPx transports on loopback."""
    a = Server(Config(private_key=newkey(), max_peers=5, listen_addr="127.0.0.1:0", no_discovery=True,
                      name="a", protocols=protocols_a, **cfg_a))
    b = Server(Config(private_key=newkey(), max_peers=5, listen_addr="127.0.0.1:0", no_discovery=True,
                      name="b", protocols=protocols_b))
    a.start()
    b.start()
    return a, b


def _echo_protocol(got):
    from p2p.message import send

    def run(peer, rw):
        send(rw, 0, [b"hello"])
        while True:
            msg = rw.read_msg()
            got.put((msg.code, msg.decode()))

    return Protocol(name="echo", version=1, length=1, run=run)


def test_server_real_peers_msg_events_and_quitting():
    """Real RLPx between two servers: message events, peers_info, and 'client quitting' on stop."""
    got_a, got_b = queue.Queue(), queue.Queue()
    a, b = _pair([_echo_protocol(got_a)], [_echo_protocol(got_b)], enable_msg_events=True)
    events_a, events_b = queue.Queue(), queue.Queue()
    sub_a = a.subscribe_events(events_a)
    sub_b = b.subscribe_events(events_b)
    try:
        b.add_peer(a.self())
        assert got_a.get(timeout=WAIT) == (0, [b"hello"])
        assert got_b.get(timeout=WAIT) == (0, [b"hello"])
        kinds = set()
        while not {"add", "msgsend", "msgrecv"} <= kinds:
            ev = events_a.get(timeout=WAIT)
            kinds.add(str(ev.type))
            if str(ev.type) in ("msgsend", "msgrecv"):
                assert ev.protocol == "echo" and ev.msg_code == 0 and ev.peer == b.self().id
        infos = a.peers_info()
        assert [i.id for i in infos] == [b.self().id.hex()]
        assert infos[0].name == "b" and infos[0].network.inbound
        assert b.peers_info()[0].network.static
        a.stop()
        while True:
            ev = events_b.get(timeout=WAIT)
            if str(ev.type) == "drop":
                assert ev.error == "client quitting"
                break
    finally:
        sub_a.unsubscribe()
        sub_b.unsubscribe()
        a.stop()
        b.stop()


def test_server_useless_peer_rejected_both_sides():
    a, b = _pair([_echo_protocol(queue.Queue())], [Protocol(name="other", version=1, length=1,
                                                           run=_discard_run)])
    events_b = queue.Queue()
    sub = b.subscribe_events(events_b)
    try:
        assert a.peer_count() == 0
        # b dials a; neither accepts the other: no matching protocol.
        fd = socket.create_connection(srvmod.split_host_port(a.listen_addr), timeout=WAIT)
        err = b.setup_conn(fd, dynDialedConn, a.self())
        assert err == peer_error.DiscUselessPeer
        assert b.peer_count() == 0 and a.peer_count() == 0
        assert events_b.empty()
    finally:
        sub.unsubscribe()
        a.stop()
        b.stop()


class PipeDialer:
    """A NodeDialer that connects through a socket pair and keeps the far ends."""

    def __init__(self):
        self.dialed = queue.Queue()
        self.far = []

    def dial(self, dest):
        near, far = socket.socketpair()
        self.far.append(far)
        self.dialed.put(dest)
        return near


def test_server_uses_config_dialer():
    remid = random_id()
    connected = queue.Queue()
    d = PipeDialer()
    srv = start_test_server(remid, connected.put, dialer=d, listen_addr="")
    try:
        dest = new_node(remid, "127.0.0.1", 0, 30303)
        srv.add_peer(dest)
        assert d.dialed.get(timeout=WAIT) is dest
        p = connected.get(timeout=WAIT)
        assert p.id() == remid and not p.inbound()
        assert p.info().network.static
    finally:
        srv.stop()
        for fd in d.far:
            fd.close()


def test_server_add_trusted_peer():
    """geth 1.8.16's AddTrustedPeer/RemoveTrustedPeer: a trusted node gets in at the cap; the flag follows."""
    srv = Server(Config(private_key=newkey(), max_peers=1, no_dial=True, no_discovery=True))
    srv.start()
    fds = []
    try:
        assert srv.checkpoint(_newconn(random_id(), fds), "addpeer") is None  # the one slot
        tid = random_id()
        node = new_node(tid, None, 0, 0)
        assert srv.checkpoint(_newconn(tid, fds), "posthandshake") == peer_error.DiscTooManyPeers
        srv.add_trusted_peer(node)
        c = _newconn(tid, fds)
        assert srv.checkpoint(c, "posthandshake") is None  # the flag is set here, as in geth
        assert c.is_(trustedConn)
        assert srv.checkpoint(c, "addpeer") is None
        srv.remove_trusted_peer(node)
        assert srv.peer_count() == 2  # the message has been handled
        assert not c.is_(trustedConn)  # the connected peer lost the flag
        srv.add_trusted_peer(node)
        assert srv.peer_count() == 2
        assert c.is_(trustedConn)  # and got it back
    finally:
        srv.stop()
        for fd in fds:
            fd.close()
