"""Limits under load, on 127.0.0.1: MaxPeers, MaxPendingPeers, DialRatio, NetRestrict,
and discovery's refusal of unbonded findnode and expired packets.

tests/test_server.py checks each limit with one connection (or fake conns through
the checkpoints); these tests hit a real Server with many concurrent clients (raw
sockets sending garbage or half an auth, and real RLPx clients) and check that the
limits hold all along, observed through a counting transport hook and the
server's peer events, and that the server keeps serving afterwards.
"""

from __future__ import annotations

import os
import queue
import random
import socket
import threading
import time

import pytest

from p2p import crypto, peer as peermod, peer_error, rlpx, server as srvmod
from p2p.discover import udp as udpmod
from p2p.discover.node import pubkey_id
from p2p.message import send
from p2p.netutil.net import Netlist
from p2p.peer import ProtoHandshake
from p2p.protocol import Cap, Protocol
from p2p.server import Config, Server
from tests.helpers import capture_auth, run_parallel

WAIT = 20.0  # upper bound for a wait on a condition; never a sleep
WELCOME = peermod.baseProtocolLength  # first code of the "hold/1" protocol


def _hold_run(peer, rw):
    # "hold/1": say welcome, then read until the connection ends.
    send(rw, 0, [])
    while True:
        rw.read_msg().discard()


HOLD = Protocol(name="hold", version=1, length=1, run=_hold_run)


class Counter:
    """Connections inside the handshakes of a server, counted by its transport hook."""

    def __init__(self):
        self.mu = threading.Lock()
        self.now = 0
        self.max = 0
        self.total = 0

    def enter(self):
        with self.mu:
            self.now += 1
            self.total += 1
            self.max = max(self.max, self.now)

    def exit(self):
        with self.mu:
            self.now -= 1


class CountingTransport:
    """rlpx with a short handshake deadline; counts itself pending from creation
    (setup_conn, inside a pending slot) until its protocol handshake ends or it is closed."""

    def __init__(self, fd, counter, handshake_timeout):
        self.t = rlpx.new_rlpx(fd, handshake_timeout=handshake_timeout)
        self.counter = counter
        self.pending = True
        self.mu = threading.Lock()
        counter.enter()

    def _done(self):
        with self.mu:
            if self.pending:
                self.pending = False
                self.counter.exit()

    def do_enc_handshake(self, prv, dial_dest):
        return self.t.do_enc_handshake(prv, dial_dest)

    def do_proto_handshake(self, our):
        try:
            return self.t.do_proto_handshake(our)
        finally:
            self._done()

    def read_msg(self):
        return self.t.read_msg()

    def write_msg(self, msg):
        return self.t.write_msg(msg)

    def close(self, err):
        self._done()
        self.t.close(err)


class PeerGauge:
    """Live peer count from the server's events, with its maximum."""

    def __init__(self, srv):
        self.cond = threading.Condition()
        self.live = set()
        self.max = 0
        self.adds = 0
        self.q = queue.Queue()
        self.sub = srv.subscribe_events(self.q)
        self._stop = False
        self.th = threading.Thread(target=self._run, name="test.PeerGauge", daemon=True)
        self.th.start()

    def _run(self):
        while True:
            ev = self.q.get()
            if ev is None:
                return
            with self.cond:
                if ev.type == "add":
                    self.live.add(ev.peer)
                    self.adds += 1
                elif ev.type == "drop":
                    self.live.discard(ev.peer)
                self.max = max(self.max, len(self.live))
                self.cond.notify_all()

    def wait(self, pred, timeout=WAIT):
        with self.cond:
            assert self.cond.wait_for(lambda: pred(self), timeout), "peer gauge: condition not reached"

    def close(self):
        self.sub.unsubscribe()
        self.q.put(None)
        self.th.join(WAIT)


def start_server(counter, handshake_timeout=1.0, **kw):
    cfg = Config(private_key=crypto.generate_key(), max_peers=10, no_discovery=True,
                 listen_addr="127.0.0.1:0", name="limits", protocols=[HOLD])
    for k, v in kw.items():
        setattr(cfg, k, v)
    srv = Server(cfg, new_transport=lambda fd: CountingTransport(fd, counter, handshake_timeout))
    srv.start()
    return srv


def addr(srv):
    return srvmod.split_host_port(srv.listen_addr)


def drain_until_closed(sock):
    sock.settimeout(WAIT)
    try:
        while sock.recv(4096):
            pass
    except (ConnectionResetError, BrokenPipeError):
        pass


class RealClient:
    """A real RLPx client; ``outcome`` is "peer" (welcomed), a DiscReason, or an error."""

    def __init__(self, srv):
        self.srv = srv
        self.key = crypto.generate_key()
        self.sock = None
        self.outcome = None

    def run(self):
        self.sock = socket.create_connection(addr(self.srv), timeout=WAIT)
        t = self.t = rlpx.new_rlpx(self.sock, handshake_timeout=WAIT, frame_read_timeout=WAIT)
        try:
            t.do_enc_handshake(self.key, self.srv.self())
            our = ProtoHandshake(version=peermod.baseProtocolVersion, name="client", caps=[Cap("hold", 1)],
                                 listen_port=0, id=pubkey_id(self.key.public_key))
            t.do_proto_handshake(our)
            msg = t.read_msg()
            if msg.code == WELCOME:
                self.outcome = "peer"
            elif msg.code == peermod.discMsg:
                self.outcome = rlpx.decode_disc_reason(msg.payload.read(msg.size))
            else:
                self.outcome = "code %d" % msg.code
        except peer_error.DiscReasonError as e:
            self.outcome = e.reason
        except Exception as e:  # reported by the test
            self.outcome = e
        return self

    def close(self):
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()


def run_all(fns, timeout=60):
    """Run every client function on its own thread; re-raise the first failure."""
    run_parallel(lambda fn: fn(), fns, timeout, name="test.limits.client")


def test_limits_max_peers_and_pending_with_200_clients():
    counter = Counter()
    srv = start_server(counter, handshake_timeout=1.0, max_peers=10, max_pending_peers=4)
    gauge = PeerGauge(srv)
    rnd = random.Random(7)
    half_auth = capture_auth(srv.self(), WAIT)[:150]
    real = [RealClient(srv) for _ in range(48)]
    try:
        def garbage(n):
            def run():
                s = socket.create_connection(addr(srv), timeout=WAIT)
                try:
                    try:
                        s.sendall(bytes(rnd.getrandbits(8) for _ in range(n)))
                        s.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass  # the server may reject it before all is sent
                    drain_until_closed(s)
                finally:
                    s.close()
            return run

        def holder():
            # Half an auth, then silence: only the server's handshake deadline ends it.
            s = socket.create_connection(addr(srv), timeout=WAIT)
            try:
                s.sendall(half_auth)
                drain_until_closed(s)
            finally:
                s.close()

        clients = [garbage(rnd.choice((0, 1, 100, 306, 307, 400, 2000))) for _ in range(144)]
        clients += [holder] * 8
        clients += [c.run for c in real]
        random.Random(1).shuffle(clients)
        assert len(clients) == 200
        run_all(clients)

        outcomes = [c.outcome for c in real]
        accepted = [c for c in real if c.outcome == "peer"]
        assert len(accepted) == 10, outcomes
        assert all(o == "peer" or o == peer_error.DiscTooManyPeers for o in outcomes), outcomes
        gauge.wait(lambda g: len(g.live) == 10)
        assert srv.peer_count() == 10
        # The limits held all along.
        assert counter.max <= 4, counter.max
        assert counter.total >= 200 - 10  # (nearly) every connection got a transport
        assert gauge.max <= 10
        assert counter.now == 0

        # Still serving: free the slots, and a new client becomes a peer.
        for c in accepted:
            c.close()
        gauge.wait(lambda g: not g.live)
        late = RealClient(srv).run()
        try:
            assert late.outcome == "peer", late.outcome
        finally:
            late.close()
    finally:
        for c in real:
            c.close()
        gauge.close()
        srv.stop()


def test_limits_dial_ratio_caps_inbound_peers():
    # With discovery on (nothing to dial: no bootnodes), 1/dial_ratio of the slots
    # stay reserved for dialed peers: 20 inbound clients get 9 - 9 // 3 = 6 slots.
    counter = Counter()
    srv = start_server(counter, max_peers=9, dial_ratio=3, no_discovery=False)
    gauge = PeerGauge(srv)
    real = [RealClient(srv) for _ in range(20)]
    try:
        assert srv.max_inbound_conns() == 6
        run_all([c.run for c in real])
        outcomes = [c.outcome for c in real]
        assert outcomes.count("peer") == 6, outcomes
        assert outcomes.count(peer_error.DiscTooManyPeers) == 14, outcomes
        gauge.wait(lambda g: len(g.live) == 6)
        assert gauge.max == 6 and srv.peer_count() == 6
    finally:
        for c in real:
            c.close()
        gauge.close()
        srv.stop()


@pytest.mark.parametrize("cidr,allowed", [("10.0.0.0/8", False), ("127.0.0.0/8", True)])
def test_limits_net_restrict_under_load(cidr, allowed):
    nl = Netlist()
    nl.add(cidr)
    counter = Counter()
    srv = start_server(counter, net_restrict=nl)
    try:
        if not allowed:
            # 50 connections at once: each closed at accept, no handshake ever starts.
            def refused():
                s = socket.create_connection(addr(srv), timeout=WAIT)
                try:
                    drain_until_closed(s)
                finally:
                    s.close()
            run_all([refused] * 50)
            assert counter.total == 0
            c = RealClient(srv).run()
            c.close()
            assert c.outcome != "peer"
        else:
            real = [RealClient(srv) for _ in range(8)]
            try:
                run_all([c.run for c in real])
                assert [c.outcome for c in real] == ["peer"] * 8
            finally:
                for c in real:
                    c.close()
        assert counter.max <= srvmod.defaultMaxPendingPeers
    finally:
        srv.stop()


# ---------------------------------------------------------------------------
# discovery


def test_limits_discovery_ignores_unbonded_findnode_and_expired_packets():
    unhandled = queue.Queue()
    tab, t = udpmod.new_udp(udpmod.UDPConn.listen("127.0.0.1", 0),
                            udpmod.Config(private_key=crypto.generate_key(), unhandled=unhandled))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(WAIT)
    try:
        assert tab.init_done.wait(WAIT)
        node_addr = tab.self().addr()
        port = sock.getsockname()[1]
        ep = udpmod.RpcEndpoint(udpmod._addr_ip(("127.0.0.1", 0)), port, port)
        to = udpmod.RpcEndpoint(ep.ip, node_addr[1], 0)
        probe_key = crypto.generate_key()
        got = []

        def barrier():
            # A valid ping: its pong proves every datagram sent before it was handled
            # (one read loop, in order). Anything else received before is recorded.
            pkt, h = udpmod.encode_packet(probe_key, udpmod.pingPacket,
                                          udpmod.Ping(4, ep, to, int(time.time()) + 20))
            sock.sendto(pkt, node_addr)
            while True:
                data, _ = sock.recvfrom(2048)
                p, _, _, err = udpmod.decode_packet(data)
                assert err is None
                if isinstance(p, udpmod.Pong) and p.reply_tok == h:
                    return
                got.append(p)

        barrier()  # bonds the probe (the node pings back; we don't answer: fine)
        sent = 0
        now = int(time.time())
        for batch in range(10):  # 200 packets in bursts small enough for the socket buffer
            for i in range(20):
                key = crypto.generate_key()
                if i % 2:
                    pkt, _ = udpmod.encode_packet(key, udpmod.findnodePacket,
                                                  udpmod.Findnode(os.urandom(64), now + 20))
                else:
                    kind = (udpmod.pingPacket, udpmod.findnodePacket, udpmod.pongPacket)[i % 3]
                    req = {udpmod.pingPacket: udpmod.Ping(4, ep, to, now - 1),
                           udpmod.findnodePacket: udpmod.Findnode(os.urandom(64), now - 1),
                           udpmod.pongPacket: udpmod.Pong(to, os.urandom(32), now - 1)}[kind]
                    pkt, _ = udpmod.encode_packet(key, kind, req)
                sock.sendto(pkt, node_addr)
                sent += 1
            barrier()
        # No neighbors and no pong for any of them: only the probe's pings came back.
        assert all(isinstance(p, udpmod.Ping) for p in got), got
        # Every refused packet was reported as unhandled (one read loop, in order).
        dropped = 0
        while True:
            try:
                rp = unhandled.get_nowait()
            except queue.Empty:
                break
            if rp is None:
                continue
            dropped += 1
        assert dropped == sent == 200
        # The probe (bonded through its pongs? no: it never answered) is still
        # served pings: the node keeps serving.
        barrier()
    finally:
        sock.close()
        tab.close()


# ---------------------------------------------------------------------------
# Regression: a ping flood from a peer that never reads


def _pong_threads():
    return sum(1 for t in threading.enumerate() if t.name == "p2p.Peer.handle")


def test_limits_ping_flood_from_a_peer_that_never_reads():
    # The server used to start a thread per ping to send the pong; with the
    # client not reading, those threads blocked and piled up (~19,000 live
    # threads after 100,000 pings). At most one pong sender may exist per peer.
    from p2p.message import Msg

    counter = Counter()
    srv = start_server(counter, max_peers=5)
    gauge = PeerGauge(srv)
    c = RealClient(srv)
    try:
        c.run()
        assert c.outcome == "peer"
        c.t.conn.set_write_deadline(time.monotonic() + WAIT)
        peak = 0
        ping = peermod.pingMsg
        for i in range(20000):
            c.t.write_msg(Msg.from_bytes(ping, b"\xc0"))
            if i % 500 == 0:
                peak = max(peak, _pong_threads())
        peak = max(peak, _pong_threads())
        assert peak <= 1, peak
        assert srv.peer_count() == 1  # still connected: the flood is not an error by itself
    finally:
        c.close()
        gauge.wait(lambda g: not g.live)
        gauge.close()
        srv.stop()
