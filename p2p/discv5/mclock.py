"""Monotonic time for discovery v5 (the role of geth's ``common/mclock``).

geth's ``p2p/discv5`` reads ``mclock.Now()`` (an ``AbsTime``: integer nanoseconds
on a monotonic clock) and uses Go's timers, channels and goroutines. Its
simulation tests run the whole package under NaCl "faketime", where the Go
runtime advances the clock whenever every goroutine is blocked.

Here the same code takes a clock object. It supplies the time and the three
blocking things the package needs, so a test can swap them all at once:

- ``now()``: an ``AbsTime`` (int nanoseconds);
- ``queue()``: a FIFO with ``put(item)`` and ``get(timeout=seconds)`` raising
  ``queue.Empty`` (a Go channel);
- ``event()``: ``set``/``is_set``/``wait(timeout)``/``on_set(callback)`` (a closed channel);
- ``go(fn, name)``: start a thread (a goroutine) and return it;
- ``sleep(seconds)``.

:data:`System` is the real thing. :class:`Simulated` is Go's faketime in Python:
virtual time moves only when every thread it started is blocked in one of its
queues, events or sleeps, and then jumps straight to the next deadline, so
hours of protocol time pass in seconds. (geth 1.9 added an ``mclock.Simulated``
for the same purpose, single-goroutine; ours counts threads because the v5
``Network`` runs lookups on threads of their own.)
"""

from __future__ import annotations

import collections
import heapq
import itertools
import logging
import queue
import threading
import time

log = logging.getLogger("p2p.discv5.mclock")

# time.Duration units, in nanoseconds, as Go writes them.
Nanosecond = 1
Microsecond = 1000
Millisecond = 1000 * 1000
Second = 1000 * Millisecond
Minute = 60 * Second
Hour = 60 * Minute


class Event(threading.Event):
    """threading.Event that can also call back when set (to wait on two things at once)."""

    def __init__(self):
        super().__init__()
        self._cb_lock = threading.Lock()
        self._cbs = []

    def set(self) -> None:
        with self._cb_lock:
            super().set()
            cbs, self._cbs = self._cbs, []
        for cb in cbs:
            cb()

    def on_set(self, cb) -> None:
        """Call ``cb()`` once when the event is set (at once if it is)."""
        with self._cb_lock:
            if not self.is_set():
                self._cbs.append(cb)
                return
        cb()


class SystemClock:
    """The real clock: ``time.monotonic_ns`` and the standard library."""

    def now(self) -> int:
        return time.monotonic_ns()

    def queue(self):
        return queue.Queue()

    def event(self):
        return Event()

    def go(self, fn, name: str, args=()):
        t = threading.Thread(target=fn, args=args, name=name, daemon=True)
        t.start()
        return t

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


System = SystemClock()


def now() -> int:
    """mclock.Now: the system clock's AbsTime."""
    return System.now()


class _Waiter:
    """One blocked call on a simulated queue, event or sleep."""

    __slots__ = ("cond", "done", "timed_out", "item", "owner")

    def __init__(self, lock, owner):
        self.cond = threading.Condition(lock)
        self.done = False
        self.timed_out = False
        self.item = None
        self.owner = owner  # the _SimQueue/_SimEvent it waits on, None for sleep


class Simulated:
    """Virtual time for threads (Go's faketime).

    Every thread that takes part (started with :meth:`go`) counts as busy until
    it blocks in a simulated queue/event/sleep. When the count of busy threads
    drops to zero, the clock jumps to the nearest deadline and wakes that waiter,
    or runs the callback scheduled with :meth:`after_func` (counted busy while it
    runs). A thread that was not started by :meth:`go` must not block on the
    simulated primitives; it may put into queues and set events.
    """

    def __init__(self, start: int = 0):
        self._lock = threading.RLock()
        self._now = start
        self._busy = 0
        self._timers = []  # heap of (deadline, seq, waiter or callable)
        self._seq = itertools.count()
        self._threads = []
        self.events = 0  # waits and callbacks completed: a measure of work done

    # -- time
    def now(self) -> int:
        with self._lock:
            return self._now

    # -- primitives
    def queue(self):
        return _SimQueue(self)

    def event(self):
        return _SimEvent(self)

    def go(self, fn, name: str, args=()):
        def run():
            try:
                fn(*args)
            except Exception:
                log.exception("simulated thread %s failed", name)
            finally:
                with self._lock:
                    self._busy -= 1
                    self._advance()

        with self._lock:
            self._busy += 1
        t = threading.Thread(target=run, name=name, daemon=True)
        self._threads.append(t)
        t.start()
        return t

    def sleep(self, seconds: float) -> None:
        with self._lock:
            w = _Waiter(self._lock, None)
            self._block(w, seconds)

    def after_func(self, seconds: float, fn) -> None:
        """Run ``fn()`` once, ``seconds`` of virtual time from now (time.AfterFunc)."""
        with self._lock:
            heapq.heappush(self._timers, (self._now + int(seconds * Second), next(self._seq), fn))

    def join_all(self, timeout: float) -> bool:
        """Wait (real time) for every thread started by :meth:`go`; True if all ended."""
        deadline = time.monotonic() + timeout
        for t in list(self._threads):
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    # -- internals (lock held)
    def _block(self, w, seconds):
        if seconds is not None:
            heapq.heappush(self._timers, (self._now + max(0, int(seconds * Second)), next(self._seq), w))
        self._busy -= 1
        self._advance()
        while not w.done:
            w.cond.wait()
        self.events += 1
        return w

    def _wake(self, w, item=None, timed_out=False):
        w.done = True
        w.item = item
        w.timed_out = timed_out
        self._busy += 1
        w.cond.notify()

    def _advance(self):
        while self._busy == 0 and self._timers:
            deadline, _, what = heapq.heappop(self._timers)
            if isinstance(what, _Waiter):
                if what.done:
                    continue
                self._now = max(self._now, deadline)
                if what.owner is not None:
                    what.owner._waiters.remove(what)
                self._wake(what, timed_out=True)
            else:
                self._now = max(self._now, deadline)
                self._busy += 1
                self._lock.release()
                try:
                    what()
                except Exception:
                    log.exception("simulated timer callback failed")
                finally:
                    self._lock.acquire()
                    self._busy -= 1
                    self.events += 1


class _SimQueue:
    def __init__(self, clock: Simulated):
        self._clock = clock
        self._items = collections.deque()
        self._waiters = collections.deque()

    def put(self, item) -> None:
        with self._clock._lock:
            if self._waiters:
                self._clock._wake(self._waiters.popleft(), item)
            else:
                self._items.append(item)

    def put_nowait(self, item) -> None:
        self.put(item)

    def get(self, block: bool = True, timeout=None):
        c = self._clock
        with c._lock:
            if self._items:
                return self._items.popleft()
            if not block or (timeout is not None and timeout <= 0):
                raise queue.Empty
            w = _Waiter(c._lock, self)
            self._waiters.append(w)
            c._block(w, timeout)
            if w.timed_out:
                raise queue.Empty
            return w.item

    def get_nowait(self):
        return self.get(block=False)

    def qsize(self) -> int:
        with self._clock._lock:
            return len(self._items)

    def empty(self) -> bool:
        return self.qsize() == 0


class _SimEvent:
    def __init__(self, clock: Simulated):
        self._clock = clock
        self._set = False
        self._waiters = collections.deque()
        self._cbs = []

    def set(self) -> None:
        with self._clock._lock:
            if self._set:
                return
            self._set = True
            while self._waiters:
                self._clock._wake(self._waiters.popleft())
            cbs, self._cbs = self._cbs, []
        for cb in cbs:
            cb()

    def on_set(self, cb) -> None:
        with self._clock._lock:
            if not self._set:
                self._cbs.append(cb)
                return
        cb()

    def is_set(self) -> bool:
        with self._clock._lock:
            return self._set

    def wait(self, timeout=None) -> bool:
        c = self._clock
        with c._lock:
            if self._set:
                return True
            if timeout is not None and timeout <= 0:
                return False
            w = _Waiter(c._lock, self)
            self._waiters.append(w)
            c._block(w, timeout)
            return not w.timed_out
