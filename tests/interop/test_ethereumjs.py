"""Interop with an independent devp2p implementation: ethereumjs (@ethereumjs/devp2p).

The other client runs as a Node.js subprocess (tests/interop/ejs_node.mjs) on
127.0.0.1, driven by JSON lines. Without Node.js or its packages the tests skip,
except in CI (CI=true), where they must run. ``make test`` installs the packages.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading

import pytest

from p2p import crypto
from p2p.cmd.p2pnode import Chat
from p2p.discover.node import new_node, hex_id
from p2p.discover.udp import Config as UDPConfig, UDPConn, listen_udp
from p2p.peer_error import DiscReason
from p2p.server import Config, Server

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "ejs_node.mjs")
MODULES = os.path.join(HERE, "node_modules", "@ethereumjs", "devp2p")
WAIT = 15.0


def _available():
    if shutil.which("node") is None:
        return "Node.js is not installed"
    if not os.path.isdir(MODULES):
        return "ethereumjs packages missing: run `make test` (npm ci in tests/interop)"
    return None


_why = _available()
if _why is not None:
    if os.environ.get("CI") == "true":
        raise RuntimeError("interop tests must run in CI: %s" % _why)
    pytest.skip("interop tests skipped: %s" % _why, allow_module_level=True)


class EjsNode:
    """The ethereumjs node subprocess; events arrive on a queue read by a thread."""

    def __init__(self):
        self.key = crypto.generate_key()
        self.proc = subprocess.Popen(
            ["node", SCRIPT, "--key", self.key.secret.hex(), "--host", "127.0.0.1"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, cwd=HERE, bufsize=1)
        self.events = queue.Queue()
        self.log = []
        self._reader = threading.Thread(target=self._read, name="interop.ejs.stdout", daemon=True)
        self._reader.start()
        ready = self.wait("ready")
        self.id = hex_id(ready["id"])
        self.udp = ready["udp"]
        self.tcp = ready["tcp"]
        assert self.id == bytes(self.key.public_key.raw)

    def _read(self):
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            self.log.append(ev)
            self.events.put(ev)
        self.events.put({"event": "exit"})

    def node(self):
        return new_node(self.id, "127.0.0.1", self.udp, self.tcp)

    def send(self, **cmd):
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def wait(self, kind, pred=lambda ev: True, timeout=WAIT):
        """The next event of this kind matching pred; earlier others are kept in the log."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r event from ethereumjs within %.0fs; saw %s" % (kind, timeout, self.log[-10:]))
            try:
                ev = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if ev["event"] == "exit":
                raise AssertionError("ethereumjs exited: %s" % self.proc.stderr.read()[-2000:])
            if ev["event"] == kind and pred(ev):
                return ev

    def close(self):
        if self.proc.poll() is None:
            try:
                self.send(cmd="quit")
            except (BrokenPipeError, ValueError):
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except (OSError, ValueError):
                pass


@pytest.fixture
def ejs():
    node = EjsNode()
    try:
        yield node
    finally:
        node.close()


class ChatServer:
    """One of our Servers running chat/1, recording peers and messages."""

    def __init__(self, **kw):
        self.key = crypto.generate_key()
        self.messages = queue.Queue()
        self.chat = Chat(on_message=lambda peer, text: self.messages.put((peer.id(), text)))
        self.srv = Server(Config(private_key=self.key, name="gethp2p-interop", max_peers=10,
                                 listen_addr="127.0.0.1:0", protocols=[self.chat.protocol], **kw))
        self.events = queue.Queue()
        self.srv.start()
        self.sub = self.srv.subscribe_events(self.events)

    def wait_event(self, type_, timeout=WAIT):
        import time

        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no peer event %r within %.0fs" % (type_, timeout))
            try:
                ev = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if str(getattr(ev.type, "value", ev.type)) == type_:
                return ev

    def close(self):
        self.sub.unsubscribe()
        self.srv.stop()


@pytest.fixture
def ours():
    s = ChatServer(no_discovery=True)
    try:
        yield s
    finally:
        s.close()


# ---------------------------------------------------------------------------
# Discovery v4


def test_discovery_ethereumjs_bootstraps_from_us(ejs):
    key = crypto.generate_key()
    tab = listen_udp(UDPConn.listen("127.0.0.1", 0), UDPConfig(private_key=key))
    try:
        me = tab.self()
        ejs.send(cmd="bootstrap", address="127.0.0.1", udpPort=me.udp, tcpPort=me.tcp)
        added = ejs.wait("dpt_peer_added", lambda ev: ev["id"] == bytes(me.id).hex())
        assert added["udpPort"] == me.udp
        ejs.send(cmd="dpt_peers")
        peers = ejs.wait("dpt_peers")["peers"]
        assert bytes(me.id).hex() in [p["id"] for p in peers]
    finally:
        tab.close()


def test_discovery_we_ping_and_find_ethereumjs(ejs):
    key = crypto.generate_key()
    tab = listen_udp(UDPConn.listen("127.0.0.1", 0), UDPConfig(private_key=key, bootnodes=[ejs.node()]))
    try:
        udp = tab.net
        # ping -> pong: ethereumjs answers our ping and learns about us.
        err = udp.ping(ejs.id, ("127.0.0.1", ejs.udp))
        assert err is None, err
        ejs.wait("dpt_peer_added", lambda ev: ev["id"] == bytes(tab.self().id).hex())
        # findnode: ethereumjs answers with its neighbours (we are in its table now).
        # Like geth, findnode waits for a full bucket (16) and reports a timeout
        # when fewer arrive; the nodes that did arrive are returned all the same.
        nodes, err = udp.findnode(ejs.id, ("127.0.0.1", ejs.udp), tab.self().id)
        assert bytes(tab.self().id) in [bytes(n.id) for n in nodes]
    finally:
        tab.close()


# ---------------------------------------------------------------------------
# RLPx + devp2p: hello with snappy, chat both ways, disconnect reasons


def _chat_both_ways(ejs, ours, ejs_id):
    ejs.send(cmd="send", id=bytes(ours.srv.self().id).hex(), code=0, payload=[b"hello from ethereumjs".hex()])
    peer_id, text = ours.messages.get(timeout=WAIT)
    assert peer_id == ejs_id and text == "hello from ethereumjs"
    assert ours.chat.broadcast("hello from gethp2p") == 1
    msg = ejs.wait("message")
    assert msg["code"] == 0 and bytes.fromhex(msg["payload"][0]) == b"hello from gethp2p"


def test_rlpx_ethereumjs_dials_us(ejs, ours):
    me = ours.srv.self()
    ejs.send(cmd="connect", id=bytes(me.id).hex(), address="127.0.0.1", tcpPort=me.tcp)
    added = ejs.wait("peer_added")
    assert added["protocolVersion"] == 5  # both sides speak devp2p v5: snappy is on
    assert added["clientId"] == ours.srv.our_handshake.name
    assert added["capabilities"] and added["capabilities"][0]["name"] == "chat"
    ours.wait_event("add")
    (peer,) = ours.srv.peers()
    assert peer.id() == ejs.id
    assert peer.rw.transport.rw.snappy  # our frame reader/writer switched to snappy
    _chat_both_ways(ejs, ours, ejs.id)
    # We hang up with "useless peer": ethereumjs sees that reason, initiated by us.
    peer.disconnect(DiscReason.DiscUselessPeer)
    removed = ejs.wait("peer_removed")
    assert removed["reason"] == int(DiscReason.DiscUselessPeer)
    assert removed["disconnectWe"] is False
    ours.wait_event("drop")


def test_rlpx_we_dial_ethereumjs(ejs, ours):
    ours.srv.add_peer(ejs.node())
    added = ejs.wait("peer_added")
    assert added["protocolVersion"] == 5
    ev = ours.wait_event("add")
    assert ev.peer == ejs.id
    _chat_both_ways(ejs, ours, ejs.id)
    # ethereumjs hangs up with "too many peers" (0x04): our peer drops with that reason.
    ejs.send(cmd="disconnect", id=bytes(ours.srv.self().id).hex(), reason=int(DiscReason.DiscTooManyPeers))
    drop = ours.wait_event("drop")
    assert "too many peers" in str(drop.error)
