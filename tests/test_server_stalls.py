"""Stalled inbound connections must not delay an honest handshake (a p2pnode process, over loopback).

An attacker opens connections that stop at each place where the node's inbound
handshake waits for the remote side, and keeps them open:

* silent: connected, nothing sent;
* slow: a valid EIP-8 auth written one byte a second;
* prefix: 307 random bytes starting with 0x04 (the node tries the pre-EIP-8 format,
  fails, and reads the size prefix 0x04xx: it waits for up to 1,281 bytes that never come);
* no hello: the encryption handshake completed (the ack received), no hello sent;
* half hello: the encryption handshake completed, then only the header (valid MAC) of
  a hello frame.

Then an honest peer runs both handshakes, a few times in a row. Each one must end well
inside ``handshakeTimeout`` (5 s): a handshake queued behind a stalled connection (a
worker, a compute slot or a lock held while waiting for the network) would take up to
that long. The stalled connections are fewer than the node's pending-handshake limit
(``max_pending_peers``, 50), which is geth's own bound on them.

The in-process tests check the compute slots themselves (departure
handshake-compute-slots): at most that many handshakes hold one, a slot is given back
during every network wait, and one slot is enough for concurrent handshakes to finish.
"""

from __future__ import annotations

import os
import socket
import threading
import time

from p2p import crypto, rlpx, server as srvmod
from p2p.discover.node import Node as DNode
from p2p.server import Server
from tests.helpers import P2PNodeProcess
from tests.test_server_faults import _handshake, _listen_server
from tests.test_junk_conns import honest_handshake

WAIT = 30.0  # upper bound for a wait on a condition; never a sleep
PER_KIND = 6  # stalled connections of each kind: 30 in all, more than any small pool
HONEST_BOUND = rlpx.handshakeTimeout / 2  # seconds an honest handshake may take here
SLOW_EVERY = 1.0  # the slow sender's pace (seconds per byte)


def _auth(node_id) -> bytes:
    h = rlpx.EncHandshake(initiator=True, remote_id=node_id)
    return rlpx.seal_eip8(h.make_auth_msg(crypto.generate_key()), h)


def _past_enc_handshake(node):
    fd = socket.create_connection((str(node.ip), node.tcp), timeout=WAIT)
    t = rlpx.new_rlpx(fd)
    t.do_enc_handshake(crypto.generate_key(), DNode(id=node.id))
    return fd, t


def _hello_header_only(t):
    """The header of a 100-byte frame (valid MAC), and none of its body."""
    rw = t.rw
    head = rw.enc.update((100).to_bytes(3, "big") + rlpx.zeroHeader + bytes(10))
    rw.conn.write(head + rlpx.update_mac(rw.egress_mac, rw.mac_cipher, head))


def test_stalled_connections_do_not_delay_honest_handshake():
    node = P2PNodeProcess("--nodial", "--maxpeers", "10", wait=WAIT, name="test.stalls")
    node.enode()
    peer = node.node
    addr = (str(peer.ip), peer.tcp)
    socks = []
    stop = threading.Event()

    def slow(fd, data):
        try:
            for i in range(len(data)):
                fd.send(data[i:i + 1])
                if stop.wait(SLOW_EVERY):
                    return
        except OSError:
            return  # the node gave up on us (its handshake deadline): fine

    slow_threads = []
    try:
        honest_handshake(peer)  # warm-up: the node's handshake code is loaded and has run once
        t_stalled = time.monotonic()
        for _ in range(PER_KIND):
            socks.append(socket.create_connection(addr, timeout=WAIT))  # silent
        for _ in range(PER_KIND):
            fd = socket.create_connection(addr, timeout=WAIT)
            socks.append(fd)
            th = threading.Thread(target=slow, args=(fd, _auth(peer.id)), name="test.stalls.slow", daemon=True)
            th.start()
            slow_threads.append(th)
        for _ in range(PER_KIND):
            fd = socket.create_connection(addr, timeout=WAIT)
            fd.sendall(b"\x04" + os.urandom(rlpx.encAuthMsgLen - 1))
            socks.append(fd)
        for _ in range(PER_KIND):
            fd, _t = _past_enc_handshake(peer)  # the node has sent its ack: it waits for our hello
            socks.append(fd)
        for _ in range(PER_KIND):
            fd, t = _past_enc_handshake(peer)
            _hello_header_only(t)
            socks.append(fd)

        took = []
        for _ in range(3):
            took.append(honest_handshake(peer))
        assert max(took) < HONEST_BOUND, "honest handshakes took %s s with %d stalled connections" % (
            ", ".join("%.3f" % d for d in took), len(socks))
        # Otherwise the node could have dropped the stalled connections (their handshake
        # deadline) before the honest peer came, and the test would show nothing.
        assert time.monotonic() - t_stalled < rlpx.handshakeTimeout, "setting up the stalls took too long"
    finally:
        stop.set()
        for th in slow_threads:
            th.join(WAIT)
        for fd in socks:
            fd.close()
        assert node.stop() == 0


class _CountingSlots(srvmod._ComputeSlots):
    """Compute slots that count their holders (and how many held one at most)."""

    def __init__(self, n):
        super().__init__(n)
        self.cond = threading.Condition()
        self.now = self.most = self.entered = 0

    def enter(self):
        super().enter()
        with self.cond:
            self.now += 1
            self.entered += 1
            self.most = max(self.most, self.now)

    def leave(self):
        if not getattr(self._held, "slot", False):
            return super().leave()
        with self.cond:
            self.now -= 1
            self.cond.notify_all()
        return super().leave()


def test_compute_slots_leave_gives_back_only_own_slot():
    slots = srvmod._ComputeSlots(1)
    slots.enter()
    other = []
    th = threading.Thread(target=lambda: other.append(slots.leave()), name="test.stalls.other")
    th.start()
    th.join(WAIT)
    assert other == [False]  # a thread sharing the socket (the hello writer) gives back nothing
    assert slots.leave() is True
    assert slots.leave() is False
    slots.enter()  # the one slot is free again
    assert slots.leave() is True


def test_one_compute_slot_serves_concurrent_handshakes(crypto_backend):
    """8 peers handshake at once with a server that has one compute slot: all succeed,
    never more than one handshake holds the slot, and every slot is given back."""
    srv = Server(_listen_server(max_peers=20))
    slots = srv._compute_slots = _CountingSlots(1)
    srv.start()
    results, errors = [], []

    def peer():
        try:
            results.append(_handshake(srv))
        except Exception as err:  # reported below
            errors.append(err)

    try:
        ths = [threading.Thread(target=peer, name="test.stalls.peer") for _ in range(8)]
        for th in ths:
            th.start()
        for th in ths:
            th.join(WAIT)
        assert not errors, errors
        assert len(results) == 8
        with slots.cond:
            assert slots.cond.wait_for(lambda: slots.now == 0 and slots.entered >= 8, WAIT), (
                slots.now, slots.entered)
        assert slots.most == 1
    finally:
        for t in results:
            t.close()
        srv.stop()
