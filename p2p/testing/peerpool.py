"""A pool of test peers by ID (geth's p2p/testing/peerpool.go)."""

from __future__ import annotations

import threading

from p2p.log import get_logger

log = get_logger("p2p.testing")


class TestPeer:
    """What the pool holds: anything with ``id()`` and ``drop(err)``."""

    __test__ = False  # not a pytest test class

    def id(self):
        raise NotImplementedError

    def drop(self, err) -> None:
        raise NotImplementedError


def new_test_peer_pool() -> TestPeerPool:
    return TestPeerPool()


class TestPeerPool:
    """Peers by node ID, safe to use from several threads."""

    __test__ = False  # not a pytest test class

    def __init__(self):
        self.lock = threading.Lock()
        self.peers = {}

    def add(self, peer) -> None:
        with self.lock:
            log.trace("pp add peer  %s" % peer.id().hex())
            self.peers[peer.id()] = peer

    def remove(self, peer) -> None:
        with self.lock:
            self.peers.pop(peer.id(), None)

    def has(self, id) -> bool:
        with self.lock:
            return id in self.peers

    def get(self, id):
        """The peer with ``id``, or None."""
        with self.lock:
            return self.peers.get(id)

    def __repr__(self):
        with self.lock:
            return "TestPeerPool(%s)" % ", ".join(i.terminal_string() for i in self.peers)
