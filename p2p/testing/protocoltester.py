"""A pivot node running a protocol, and mock peers that script messages to it.

geth's p2p/testing/protocoltester.go: the pivot runs the protocol under test
(a "test" service), each mock peer runs a "mock" service whose protocol loop
sends what a Trigger says and checks what an Expect says. All of them are
sim-adapter nodes of one simulation network, connected pivot -> mock.
"""

from __future__ import annotations

import queue
import threading

import rlp

from p2p import message as p2p_message
from p2p.log import get_logger
from p2p.node.node import Service
from p2p.protocol import Protocol
from p2p.protocols.protocol import WrappedMsg
from p2p.simulations.adapters import inproc, types
from p2p.testing.protocolsession import ProtocolSession

log = get_logger("p2p.testing")


def new_protocol_tester(id, n: int, run) -> ProtocolTester:
    """A pivot node ``id`` running ``run`` as its protocol, connected to ``n`` mock peers."""
    from p2p.simulations.network import NetworkConfig, new_network

    services = {
        "test": lambda ctx: TestNode(run),
        "mock": lambda ctx: new_mock_node(),
    }
    adapter = inproc.new_sim_adapter(services)
    net = new_network(adapter, NetworkConfig())
    net.new_node_with_config(types.NodeConfig(id=id, enable_msg_events=True, services=["test"]))
    net.start(id)
    node = net.get_node(id).node
    peers = []
    peer_ids = []
    for _ in range(n):
        conf = types.random_node_config()
        conf.services = ["mock"]
        peers.append(conf)
        peer_ids.append(conf.id)
    # geth's channel holds 1000 events; an unbounded queue never blocks the server's feed.
    events: "queue.Queue" = queue.Queue()
    node.subscribe_events(events)
    ps = ProtocolSession(node.server(), peer_ids, adapter, events)
    tester = ProtocolTester(ps, net)
    try:
        tester.connect(id, *peers)
    except BaseException:
        tester.stop()
        raise
    return tester


class ProtocolTester(ProtocolSession):
    """A ProtocolSession plus the network it runs in (geth embeds the session)."""

    __test__ = False  # not a pytest test class

    def __init__(self, session: ProtocolSession, network):
        super().__init__(session.server, session.ids, session.adapter, session.events)
        self.network = network

    def stop(self) -> None:
        """Stop every node of the tester's network.

        geth stops only the pivot's server and leaves the mock nodes running;
        here every thread must end, so the whole network is shut down.
        """
        self.network.shutdown()

    def connect(self, self_id, *peers) -> None:
        """Add, start and connect (from the pivot) a node for each of ``peers``' configs."""
        for peer in peers:
            log.trace("start node %s" % peer.id.hex())
            try:
                self.network.new_node_with_config(peer)
                self.network.start(peer.id)
            except Exception as err:
                raise RuntimeError("error starting peer %s: %s" % (peer.id.hex(), err)) from err
            log.trace("connect to %s" % peer.id.hex())
            try:
                self.network.connect(self_id, peer.id)
            except Exception as err:
                raise RuntimeError("error connecting to peer %s: %s" % (peer.id.hex(), err)) from err


class TestNode(Service):
    """A service whose only protocol is ``run`` (length 100, no name, as in geth)."""

    __test__ = False  # not a pytest test class

    def __init__(self, run):
        self.run = run

    def protocols(self):
        return [Protocol(length=100, run=self.run)]

    def apis(self):
        return []

    def start(self, server) -> None:
        pass

    def stop(self) -> None:
        pass


def new_mock_node() -> MockNode:
    return MockNode()


class MockNode(TestNode):
    """A mock peer: its protocol loop sends triggers and checks expects on request."""

    def __init__(self):
        super().__init__(self.run_)
        # The protocol loop's one mailbox: ("trigger", trig, reply), ("expect", exps, reply), ("stop",).
        self._mailbox: "queue.Queue" = queue.Queue()
        self._stopped = threading.Event()

    def run_(self, peer, rw):
        # geth's mockNode.Run (named run_ because TestNode.run is the protocol function)
        while True:
            item = self._mailbox.get()
            if item[0] == "stop":
                self._mailbox.put(item)  # every Run of this mock sees it
                return None
            kind, value, reply = item
            try:
                if kind == "trigger":
                    p2p_message.send(rw, value.code, wrap(value.msg))
                    reply.put(None)
                else:
                    reply.put(expect_msgs(rw, value))
            except Exception as err:  # the requester gets the error, the loop goes on
                reply.put(err)

    def trigger(self, trig, timeout: float, timeout_error: Exception) -> None:
        """Have the protocol loop send ``trig``; raises its error, or ``timeout_error``."""
        err = self._request("trigger", trig, timeout, timeout_error)
        if err is not None:
            raise err

    def expect(self, *exp, timeout: float, timeout_error: Exception):
        """Have the protocol loop check ``exp``; returns its error (``timeout_error`` if late) or None."""
        return self._request("expect", list(exp), timeout, timeout_error)

    def _request(self, kind, value, timeout, timeout_error):
        # Python-only: Trigger and Expect share this; the timeout is geth's caller-side select.
        reply: "queue.Queue" = queue.Queue(maxsize=1)
        if self._stopped.is_set():
            return RuntimeError("mock node stopped")
        self._mailbox.put((kind, value, reply))
        try:
            return reply.get(timeout=timeout)
        except queue.Empty:
            return timeout_error

    def stop(self) -> None:
        if not self._stopped.is_set():
            self._stopped.set()
            self._mailbox.put(("stop",))


def expect_msgs(rw, exps) -> None:
    """Read messages until every one of ``exps`` came (in any order); the error or None."""
    matched = [False] * len(exps)
    while True:
        try:
            msg = rw.read_msg()
        except EOFError:
            break
        actual_content = msg.payload.read()
        found = False
        for i, exp in enumerate(exps):
            if exp.code == msg.code and actual_content == must_encode_msg(wrap(exp.msg)):
                if matched[i]:
                    return AssertionError("message #%d received two times" % i)
                matched[i] = True
                found = True
                break
        if not found:
            expected = ["code %d payload %s" % (exp.code, must_encode_msg(wrap(exp.msg)).hex())
                        for i, exp in enumerate(exps) if not matched[i]]
            return AssertionError("unexpected message code %d payload %s, expected %s" % (
                msg.code, actual_content.hex(), " or ".join(expected)))
        if all(matched):
            return None
    for i, m in enumerate(matched):
        if not m:
            return AssertionError("expected message #%d not received" % i)
    return None


def must_encode_msg(msg) -> bytes:
    return rlp.encode(msg)


def wrap(msg) -> WrappedMsg:
    """``msg`` as protocols.Peer sends it: wrapped with its size and an empty context."""
    data = rlp.encode(msg)
    return WrappedMsg(Context=b"", Size=len(data), Payload=data)
