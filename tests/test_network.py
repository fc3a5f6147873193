"""Loopback integration: real servers, real discovery, real RLPx, a test protocol.

Also server-level bad input: each bad client gets its connection closed (with the
right reason where there is one) and the server goes on serving the next client.
"""

from __future__ import annotations

import os
import queue
import socket
import threading

import pytest

from p2p import crypto, dial, peer as peermod, peer_error, rlpx, server as srvmod
from p2p.discover import udp as discover_udp
from p2p.discover.node import pubkey_id
from p2p.message import send
from p2p.peer import ProtoHandshake
from p2p.protocol import Cap, Protocol
from p2p.server import Config, Server
from tests.helpers import capture_auth

WAIT = 20.0

PING, PONG = 0, 1


def _fd_count():
    return len(os.listdir("/proc/self/fd"))


class Recorder:
    """Events of all the test protocol instances, on one queue."""

    def __init__(self):
        self.q = queue.Queue()


def make_test_protocol(index, rec):
    """"test/1": each side sends PING [index]; the other answers PONG [index]."""

    def run(peer, rw):
        send(rw, PING, [index])
        while True:
            msg = rw.read_msg()
            (other,) = msg.decode()
            other = int.from_bytes(other, "big")
            if msg.code == PING:
                send(rw, PONG, [index])
            elif msg.code == PONG:
                rec.q.put((index, other))
            else:
                raise peer_error.new_peer_error(peer_error.errInvalidMsgCode, "%d", msg.code)

    return Protocol(name="test", version=1, length=2, run=run)


def _connected(n, edges):
    seen, todo = {0}, [0]
    while todo:
        a = todo.pop()
        for b in range(n):
            if b not in seen and (a, b) in edges:
                seen.add(b)
                todo.append(b)
    return len(seen) == n


def test_network_ten_servers(monkeypatch):
    # Discovery lookups are spaced by dial.lookupInterval; shorten it for the test.
    monkeypatch.setattr(dial, "lookupInterval", 0.2)
    fds_before = _fd_count()
    threads_before = set(threading.enumerate())

    bootsock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    bootsock.bind(("127.0.0.1", 0))
    bootkey = crypto.generate_key()
    boot = discover_udp.listen_udp(bootsock, discover_udp.Config(private_key=bootkey))
    bootnode = boot.self()

    n = 10
    rec = Recorder()
    servers = []
    try:
        for i in range(n):
            srv = Server(Config(private_key=crypto.generate_key(), max_peers=n + 2, name="node%d" % i,
                                listen_addr="127.0.0.1:0", bootstrap_nodes=[bootnode],
                                protocols=[make_test_protocol(i, rec)]))
            srv.start()
            servers.append(srv)
        ports = [srvmod.split_host_port(s.listen_addr)[1] for s in servers]
        assert all(p != 0 for p in ports)
        # discovery runs on the same port as TCP
        assert [s.self().udp for s in servers] == ports

        # Wait until every server exchanged PING/PONG both ways with someone and
        # the graph of those two-way exchanges is connected.
        got = set()
        edges = set()
        while True:
            try:
                a, b = rec.q.get(timeout=WAIT)
            except queue.Empty:
                pytest.fail("network did not converge; two-way exchanges: %s" % sorted(edges))
            got.add((a, b))
            if (b, a) in got:
                edges.add((a, b))
                edges.add((b, a))
            if all(any((i, j) in edges for j in range(n)) for i in range(n)) and _connected(n, edges):
                break
        for i, s in enumerate(servers):
            assert s.peer_count() >= 1
            names = {p.name() for p in s.peers()}
            assert names and all(nm.startswith("node") for nm in names)
    finally:
        for s in servers:
            s.stop()
        boot.close()
    for t in threading.enumerate():
        if t not in threads_before:
            t.join(5.0)
    leaked = [t.name for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    assert not leaked, leaked
    assert _fd_count() == fds_before


# ---------------------------------------------------------------------------
# bad input


class _Events:
    def __init__(self, srv):
        self.q = queue.Queue()
        self.sub = srv.subscribe_events(self.q)

    def next(self, typ):
        while True:
            ev = self.q.get(timeout=WAIT)
            if ev.type == typ:
                return ev


def _chat_server(new_transport=None, **kw):
    cfg = Config(private_key=crypto.generate_key(), max_peers=10, no_discovery=True,
                 listen_addr="127.0.0.1:0", name="srv", protocols=[make_test_protocol(0, Recorder())])
    for k, v in kw.items():
        setattr(cfg, k, v)
    srv = Server(cfg, new_transport=new_transport)
    srv.start()
    return srv


def _addr(srv):
    return srvmod.split_host_port(srv.listen_addr)


def _assert_closed(sock):
    """The server closed sock (EOF or reset) without us closing it."""
    sock.settimeout(WAIT)
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass


def _good_client_connects(srv):
    """A well-behaved server dials srv; both sides see the peer."""
    client = _chat_server(name="good")
    ev = _Events(srv)
    cev = _Events(client)
    try:
        client.add_peer(srv.self())
        assert ev.next("add").peer == client.self().id
        assert cev.next("add").peer == srv.self().id
    finally:
        ev.sub.unsubscribe()
        cev.sub.unsubscribe()
        client.stop()


def _rlpx_client(srv, caps, key):
    """Run both handshakes against srv as a raw rlpx client; returns (sock, transport, their hello)."""
    host, port = _addr(srv)
    sock = socket.create_connection((host, port), timeout=WAIT)
    t = rlpx.new_rlpx(sock)
    t.do_enc_handshake(key, srv.self())
    our = ProtoHandshake(version=peermod.baseProtocolVersion, name="raw", caps=caps,
                         listen_port=0, id=pubkey_id(key.public_key))
    their = t.do_proto_handshake(our)
    return sock, t, their


def _read_disc_reason(t):
    msg = t.read_msg()
    assert msg.code == peermod.discMsg, "expected a disconnect, got %s" % msg
    items = msg.decode()
    raw = items[0] if isinstance(items, list) else items
    return peer_error.DiscReason(int.from_bytes(raw, "big") if isinstance(raw, bytes) else raw)


def test_server_garbage_auth():
    srv = _chat_server()
    try:
        sock = socket.create_connection(_addr(srv), timeout=WAIT)
        try:
            # More garbage than the largest auth size prefix can announce, so the
            # server has a whole "message" to reject rather than waiting for more.
            try:
                sock.sendall(os.urandom(70000))
            except OSError:  # the server may hang up before reading it all
                pass
            _assert_closed(sock)
        finally:
            sock.close()
        _good_client_connects(srv)
    finally:
        srv.stop()


def test_server_truncated_auth():
    srv = _chat_server()
    try:
        auth = capture_auth(srv.self(), WAIT)
        sock = socket.create_connection(_addr(srv), timeout=WAIT)
        try:
            sock.sendall(auth[: len(auth) // 2])
            sock.shutdown(socket.SHUT_WR)
            _assert_closed(sock)
        finally:
            sock.close()
        _good_client_connects(srv)
    finally:
        srv.stop()


def test_server_hello_no_matching_protocol():
    srv = _chat_server()
    try:
        sock, t, their = _rlpx_client(srv, [Cap("other", 1)], crypto.generate_key())
        try:
            assert their.id == srv.self().id
            assert _read_disc_reason(t) == peer_error.DiscUselessPeer
            _assert_closed(sock)
        finally:
            sock.close()
        assert srv.peer_count() == 0
        _good_client_connects(srv)
    finally:
        srv.stop()


def test_server_peer_never_answers_ping(monkeypatch):
    # A short ping interval, and a short idle read timeout on the server's
    # transports, so the silent peer is noticed at once.
    monkeypatch.setattr(peermod, "pingInterval", 0.05)
    srv = _chat_server(new_transport=lambda fd: rlpx.new_rlpx(fd, frame_read_timeout=0.3))
    ev = _Events(srv)
    try:
        key = crypto.generate_key()
        sock, t, their = _rlpx_client(srv, [Cap("test", 1)], key)
        try:
            assert ev.next("add").peer == pubkey_id(key.public_key)
            drop = ev.next("drop")
            assert "deadline" in drop.error  # the server gave up on the silent peer
            # The client was pinged, then the connection closed under it.
            codes = []
            with pytest.raises(Exception):
                while True:
                    codes.append(t.read_msg().code)
            assert peermod.pingMsg in codes
        finally:
            sock.close()
        _good_client_connects(srv)
    finally:
        ev.sub.unsubscribe()
        srv.stop()

