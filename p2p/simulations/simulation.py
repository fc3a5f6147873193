"""Steps of a simulation: do something to the network, then wait for expectations.

The twin of geth's p2p/simulations/simulation.go. A :class:`Step` has an
action (connect these nodes...), a trigger queue (node IDs to check now) and
an :class:`Expectation` (which nodes, and a check for one node). Running it
performs the action, then checks each triggered node until all pass, a check
fails, or the context ends; the :class:`StepResult` also holds every network
event seen meanwhile.

Go's ``context.Context`` becomes :class:`Context` (Python only, below): a
deadline and a cancel, which is all the simulations use of it.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from typing import Callable, Dict, List, Optional

from p2p.discover.node import NodeID

__all__ = [
    "Simulation", "new_simulation", "Step", "Expectation", "StepResult",
    "Context", "DeadlineExceeded", "Canceled",
]


def new_simulation(network) -> "Simulation":
    return Simulation(network)


class Simulation:
    """Runs steps in a network."""

    def __init__(self, network):
        self.network = network

    def run(self, ctx: "Context", step: "Step") -> "StepResult":
        """Do ``step.action``, then wait until every node of ``step.expect`` passes its check."""
        result = _new_step_result()
        result.started_at = time.time()
        stop = self._watch_network(result)
        # cancelling the context must wake the wait on the trigger queue
        ctx._on_done(lambda: step.trigger.put(_WAKE))
        try:
            try:
                step.action(ctx)
            except Exception as e:
                result.error = e
                return result

            nodes = set(step.expect.nodes)
            while len(result.passes) < len(nodes):
                err = ctx.err()
                if err is not None:
                    result.error = err
                    return result
                try:
                    id = step.trigger.get(timeout=ctx.remaining())
                except queue.Empty:
                    continue  # the deadline passed: ctx.err() says so
                if id is _WAKE:
                    continue
                if id not in nodes:
                    continue
                if id in result.passes:
                    continue
                try:
                    ok = step.expect.check(ctx, id)
                except Exception as e:
                    result.error = e
                    return result
                if ok:
                    result.passes[id] = time.time()
            return result
        finally:
            stop()
            result.finished_at = time.time()

    def _watch_network(self, result: "StepResult") -> Callable[[], None]:
        """Collect the network's events into ``result`` until the returned stop is called."""
        events: queue.SimpleQueue = queue.SimpleQueue()
        sub = self.network.events().subscribe(events)

        def loop():
            try:
                while True:
                    event = events.get()
                    if event is _WAKE:
                        return
                    result.network_events.append(event)
            finally:
                sub.unsubscribe()

        t = threading.Thread(target=loop, name="simulations.Simulation.watchNetwork", daemon=True)
        t.start()

        def stop():
            sub.unsubscribe()  # nothing more is delivered once this returns
            events.put(_WAKE)
            t.join()

        return stop


_WAKE = object()  # wakes a waiting loop; never a node ID or an event


@dataclasses.dataclass
class Step:
    # action: what to do to the network; trigger: node IDs to check now;
    # expect: the nodes and the check they must pass
    action: Callable[["Context"], None]
    trigger: queue.Queue
    expect: "Expectation"


@dataclasses.dataclass
class Expectation:
    nodes: List[NodeID]
    # check(ctx, id) -> True once the node meets the expectation; raising fails the step
    check: Callable[["Context", NodeID], bool]


def _new_step_result() -> "StepResult":
    return StepResult()


@dataclasses.dataclass
class StepResult:
    error: Optional[BaseException] = None
    started_at: float = 0.0
    finished_at: float = 0.0
    # when each node passed (time.time())
    passes: Dict[NodeID, float] = dataclasses.field(default_factory=dict)
    network_events: list = dataclasses.field(default_factory=list)


class DeadlineExceeded(TimeoutError):
    def __init__(self):
        super().__init__("context deadline exceeded")


class Canceled(Exception):
    def __init__(self):
        super().__init__("context canceled")


class Context:
    """Python only: the part of Go's context.Context the simulations use.

    ``Context(timeout=30)`` ends 30 s from now; ``cancel()`` ends it at once.
    ``err()`` is None while it lasts, then DeadlineExceeded or Canceled;
    ``remaining()`` is what a wait may last (None: no deadline).
    """

    def __init__(self, timeout: Optional[float] = None):
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._lock = threading.Lock()
        self._canceled = threading.Event()
        self._callbacks: List[Callable[[], None]] = []

    def cancel(self) -> None:
        with self._lock:
            if self._canceled.is_set():
                return
            self._canceled.set()
            callbacks, self._callbacks = self._callbacks, []
        for cb in callbacks:
            cb()

    def err(self) -> Optional[BaseException]:
        if self._canceled.is_set():
            return Canceled()
        if self._deadline is not None and time.monotonic() >= self._deadline:
            return DeadlineExceeded()
        return None

    def done(self) -> bool:
        return self.err() is not None

    def remaining(self) -> Optional[float]:
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - time.monotonic())

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait up to ``timeout`` (and no later than the deadline); True if the context ended."""
        rem = self.remaining()
        if rem is not None and (timeout is None or rem < timeout):
            timeout = rem
        self._canceled.wait(timeout)
        return self.done()

    def _on_done(self, cb: Callable[[], None]) -> None:
        with self._lock:
            if not self._canceled.is_set():
                self._callbacks.append(cb)
                return
        cb()
