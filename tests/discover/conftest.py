"""Helpers shared by the table, udp and network tests (geth's table_test.go / udp_test.go helpers)."""

import ipaddress
import queue
import threading

import pytest

from p2p.discover import udp as udpmod
from p2p.discover.node import Node, NodeID, hash_at_distance, distcmp
from p2p.discover.udp import errTimeout


def node_at_distance(base, ld, rand=None):
    """A node whose sha has log distance ld to base. Its ID doesn't match its sha
    (the sha fills the first half of the ID, keeping IDs unique)."""
    sha = hash_at_distance(base, ld) if rand is None else hash_at_distance(base, ld, rand)
    ip = ipaddress.IPv4Address(bytes((ld & 0xFF, 0, 2, ld & 0xFF)))
    return Node(ip, 0, 0, NodeID(sha + bytes(32)), sha)


class PingRecorder:
    """A transport that records pings and answers them unless the node is 'dead'."""

    def __init__(self):
        self.mu = threading.Lock()
        self.dead = {}
        self.pinged = {}

    def findnode(self, toid, toaddr, target):
        return [], None

    def ping(self, toid, toaddr):
        with self.mu:
            self.pinged[toid] = True
            return errTimeout if self.dead.get(toid) else None

    def close(self):
        pass


def has_duplicates(nodes):
    seen = set()
    for n in nodes:
        assert n is not None
        if n.id in seen:
            return True
        seen.add(n.id)
    return False


def sorted_by_distance_to(base, nodes):
    last = None
    for n in nodes:
        if last is not None and distcmp(base, n.sha, last) < 0:
            return False
        last = n.sha
    return True


class DgramPipe:
    """A fake UDP conn: writes are queued, reads block until close."""

    def __init__(self, local=("3.3.3.3", 5)):
        self.cond = threading.Condition()
        self.closed = False
        self.queue = []
        self.local = local

    def write_to_udp(self, b, addr):
        with self.cond:
            if self.closed:
                raise OSError("closed")
            self.queue.append(bytes(b))
            self.cond.notify_all()
        return len(b)

    def read_from_udp(self):
        with self.cond:
            self.cond.wait_for(lambda: self.closed)
        raise OSError("use of closed network connection")

    def close(self):
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def local_addr(self):
        return self.local

    def wait_packet_out(self, timeout=5.0):
        with self.cond:
            if not self.cond.wait_for(lambda: self.queue, timeout):
                raise AssertionError("no packet sent within %s s" % timeout)
            return self.queue.pop(0)


class UdpTest:
    """geth's udpTest: a udp transport on a DgramPipe and a remote key to send from."""

    def __init__(self):
        from p2p import crypto

        self.pipe = DgramPipe()
        self.localkey = crypto.generate_key()
        self.remotekey = crypto.generate_key()
        self.remoteaddr = ("10.0.1.99", 30303)
        self.sent = []
        self.clock_checks = queue.Queue()
        self.table, self.udp = udpmod.new_udp(self.pipe, udpmod.Config(private_key=self.localkey))
        self.udp.check_clock_drift = lambda: self.clock_checks.put(True)
        # Let the initial refresh finish so that the table sends no unexpected findnode.
        assert self.table.init_done.wait(5)

    def packet_in(self, want_error, ptype, data):
        enc, _ = udpmod.encode_packet(self.remotekey, ptype, data)
        self.sent.append(enc)
        err = self.udp.handle_packet(self.remoteaddr, enc)
        assert err is want_error, "error mismatch: got %r, want %r" % (err, want_error)
        return err

    def wait_packet_out(self, want_type):
        dgram = self.pipe.wait_packet_out()
        p, _, h, err = udpmod.decode_packet(dgram)
        assert err is None, "sent packet decode error: %r" % err
        assert type(p) is want_type, "sent packet type mismatch: got %s, want %s" % (
            type(p).__name__, want_type.__name__)
        return p, h


@pytest.fixture
def udp_test():
    t = UdpTest()
    try:
        yield t
    finally:
        t.table.close()
