"""Scripted message exchanges with a pivot node (geth's p2p/testing/protocolsession.go).

A session knows the pivot's server, the IDs of the mock peers connected to it,
the adapter that runs them all and the pivot's peer events. An
:class:`Exchange` first sends its Triggers (a mock peer sends a message to the
pivot), then checks its Expects (the pivot sends these messages to the mock
peers, in any order). Timeouts are in seconds; 0 means geth's default.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from typing import Any, List, Optional

from p2p.log import get_logger
from p2p.peer import PeerEventTypeDrop

log = get_logger("p2p.testing")


class TimedOutError(Exception):
    pass


errTimedOut = TimedOutError("timed out")


class ProtocolSession:
    """The pivot's server, the mock peers' IDs, the adapter running them, the pivot's events."""

    def __init__(self, server, ids, adapter, events: "queue.Queue"):
        self.server = server
        self.ids = list(ids)
        self.adapter = adapter
        self.events = events

    def trigger(self, trig: "Trigger") -> None:
        """Make the mock peer ``trig.peer`` send ``trig.msg`` with ``trig.code``."""
        mock = self._mock_node(trig.peer, "trigger")
        log.trace("trigger %s (%d)...." % (trig.msg, trig.code))
        t = trig.timeout or 1.0
        mock.trigger(trig, timeout=t, timeout_error=TimedOutError(
            "timout expecting %s to send to peer %s" % (trig.msg, trig.peer.hex())))
        log.trace("triggered %s (%d)" % (trig.msg, trig.code))

    def expect(self, exps: List["Expect"]) -> Optional[Exception]:
        """Check that every mock peer receives its expected messages; the first error or None."""
        peer_expects = {}
        for exp in exps:
            if exp.msg is None:
                return ValueError("no message to expect")
            peer_expects.setdefault(exp.peer, []).append(exp)
        mock_nodes = {}
        for node_id in peer_expects:
            try:
                mock_nodes[node_id] = self._mock_node(node_id, "trigger")
            except LookupError as err:
                return err
        errc: "queue.Queue" = queue.Queue()

        def check(node_id, mock):
            # The time for all of a peer's expectations: the sum of their timeouts.
            t = sum(exp.timeout or 2.0 for exp in peer_expects[node_id])
            try:
                errc.put(mock.expect(*peer_expects[node_id], timeout=t, timeout_error=errTimedOut))
            except Exception as err:  # reported to the caller
                errc.put(err)

        threads = [threading.Thread(target=check, args=(i, m), name="p2p.testing.ProtocolSession.expect")
                   for i, m in mock_nodes.items()]
        for t in threads:
            t.start()
        first = None
        for _ in threads:
            err = errc.get()
            if err is not None and first is None:
                first = err
        for t in threads:
            t.join()
        return first

    def test_exchanges(self, *exchanges: "Exchange") -> None:
        """Run the exchanges in order; raises AssertionError naming the first that fails."""
        for i, e in enumerate(exchanges):
            err = self.test_exchange(e)
            if err is not None:
                raise AssertionError("exchange #%d %r: %s" % (i, e.label, err))
            log.trace("exchange #%d %r: run successfully" % (i, e.label))

    def test_exchange(self, e: "Exchange") -> Optional[Exception]:
        """Send the triggers, then check the expects, all within ``e.timeout``; the error or None."""
        errc: "queue.Queue" = queue.Queue(maxsize=1)

        def run():
            for trig in e.triggers:
                try:
                    self.trigger(trig)
                except Exception as err:  # reported to the caller
                    errc.put(err)
                    return
            errc.put(self.expect(e.expects))

        worker = threading.Thread(target=run, name="p2p.testing.ProtocolSession.testExchange")
        worker.start()
        try:
            err = errc.get(timeout=e.timeout or 2.0)
        except queue.Empty:
            err = errTimedOut
        # The worker's own waits are bounded; wait for it so no thread outlives the exchange.
        worker.join()
        return err

    def test_disconnected(self, *disconnects: "Disconnect") -> None:
        """Wait (up to a second) for each peer's drop event with the expected error text."""
        expects = {d.peer: d.error for d in disconnects}
        deadline = time.monotonic() + 1.0
        while expects:
            try:
                event = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError("timed out waiting for peers to disconnect") from None
            if event.type != PeerEventTypeDrop:
                continue
            if event.peer not in expects:
                continue
            expect_err = expects[event.peer]
            if not ((expect_err is None and event.error == "")
                    or (expect_err is not None and str(expect_err) == event.error)):
                raise AssertionError("unexpected error on peer %s. expected '%s', got '%s'" % (
                    event.peer.hex(), expect_err, event.error))
            del expects[event.peer]

    def _mock_node(self, node_id, what):
        # Python-only: the lookup trigger and expect share in geth's code.
        from p2p.testing.protocoltester import MockNode

        sim_node = self.adapter.get_node(node_id)
        if sim_node is None:
            raise LookupError("%s: peer %s does not exist (1- %d)" % (what, node_id.hex(), len(self.ids)))
        services = sim_node.services()
        mock = services[0] if services else None
        if not isinstance(mock, MockNode):
            raise LookupError("%s: peer %s is not a mock" % (what, node_id.hex()))
        return mock


@dataclasses.dataclass
class Exchange:
    """Triggers, then expects, within a timeout (seconds; 0 means 2)."""

    label: str = ""
    triggers: List["Trigger"] = dataclasses.field(default_factory=list)
    expects: List["Expect"] = dataclasses.field(default_factory=list)
    timeout: float = 0.0


@dataclasses.dataclass
class Trigger:
    """A message a mock peer sends to the pivot."""

    msg: Any = None
    code: int = 0
    peer: Any = None  # the mock peer's NodeID
    timeout: float = 0.0  # seconds; 0 means 1


@dataclasses.dataclass
class Expect:
    """A message the pivot must send to a mock peer."""

    msg: Any = None
    code: int = 0
    peer: Any = None  # the mock peer's NodeID
    timeout: float = 0.0  # seconds; 0 means 2


@dataclasses.dataclass
class Disconnect:
    """A peer the pivot must drop, and the error text of the drop (None: no error)."""

    peer: Any = None
    error: Any = None
