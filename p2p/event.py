"""The parts of geth's ``event`` package that p2p uses: Feed and Subscription.

Go channels become ``queue.Queue`` objects:

* a subscriber hands :meth:`Feed.subscribe` any queue (``queue.Queue`` and its
  subclasses, ``queue.SimpleQueue``, or anything with a ``put`` method);
* :meth:`Feed.send` delivers one value to every subscribed queue and returns
  how many it reached. Like a send on a Go channel it blocks while a bounded
  ``queue.Queue`` is full, until the subscriber makes room or unsubscribes
  (an unbounded queue never blocks, like a channel with a huge buffer);
* :meth:`Subscription.err` is an :class:`ErrQueue` that yields the subscription's error, if
  any, and then, once the subscription has ended, ``None`` to every ``get``
  (a closed Go channel). ``sub.err().closed`` tells whether it has ended.

:func:`new_subscription` runs a producer in a thread that ends when the
subscription is unsubscribed; :func:`resubscribe` and
:class:`SubscriptionScope` follow geth's.
"""

from __future__ import annotations

import collections
import queue
import threading
import time

from p2p.log import get_logger

__all__ = [
    "Feed", "FeedTypeError", "ErrBadChannel", "Subscription", "ErrQueue",
    "new_subscription", "resubscribe", "SubscriptionScope",
]

log = get_logger("event")


# ---------------------------------------------------------------------------
# Error channel


class ErrQueue:
    """A subscription's error channel: a queue of errors that can be closed.

    ``get``/``get_nowait``/``put``/``empty``/``qsize`` behave like ``queue.Queue``'s
    (``queue.Empty`` when nothing comes). After :meth:`close`, ``get`` first returns
    any queued error, then ``None`` at once, forever, for every reader -- as
    receiving from a closed Go channel returns the zero value. Built on a
    ``threading.Condition``, so that closing can wake every blocked reader.
    """

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._items: collections.deque = collections.deque()
        self.closed = False

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def put(self, item, block: bool = True, timeout: float | None = None) -> None:
        # Unbounded: never blocks (the arguments are accepted as Queue.put's are).
        with self._cond:
            self._items.append(item)
            self._cond.notify()

    def put_nowait(self, item) -> None:
        self.put(item, False)

    def get(self, block: bool = True, timeout: float | None = None):
        with self._cond:
            if block:
                self._cond.wait_for(lambda: self._items or self.closed, timeout)
            if self._items:
                return self._items.popleft()
            if self.closed:
                return None
            raise queue.Empty

    def get_nowait(self):
        return self.get(False)

    def qsize(self) -> int:
        with self._cond:
            return len(self._items) if self._items or not self.closed else 1

    def empty(self) -> bool:
        return self.qsize() == 0


class Subscription:
    """What geth's ``Subscription`` interface promises: ``err()`` and ``unsubscribe()``."""

    def err(self) -> ErrQueue:
        raise NotImplementedError

    def unsubscribe(self) -> None:
        raise NotImplementedError


# ---------------------------------------------------------------------------
# Feed (feed.go)


class ErrBadChannel(TypeError):
    def __init__(self, msg="event: Subscribe argument does not have sendable channel type"):
        super().__init__(msg)


class FeedTypeError(TypeError):
    """A value (or subscription) of another type than the feed's first one."""

    def __init__(self, got, want, op):
        self.got, self.want, self.op = got, want, op
        super().__init__(got, want, op)

    def __str__(self):
        return "event: wrong type in %s got %s, want %s" % (self.op, self.got.__name__, self.want.__name__)

    def __eq__(self, other):
        return (isinstance(other, FeedTypeError)
                and (self.got, self.want, self.op) == (other.got, other.want, other.op))

    __hash__ = TypeError.__hash__


# Results of _FeedSub.deliver.
_SENT, _BLOCKED, _REMOVED = 0, 1, 2


class Feed:
    """One-to-many event delivery: every value sent reaches every subscriber.

    The first value sent fixes the feed's element type; values of another
    type raise :class:`FeedTypeError` (geth checks the channel element type at
    subscribe time too; Python queues are untyped, so only sends are checked).

    Sends are serialized (geth's send lock). Where geth ``select``s over all
    blocked channels at once, a Python thread cannot wait on several queues:
    ``send`` first offers the value to every subscriber without blocking, then
    waits on the still-full queues one after another. Each wait ends when that
    queue has room or that subscription is removed, so the result is geth's:
    the call returns once every current subscriber got the value or left.
    """

    def __init__(self):
        self._send_lock = threading.Lock()  # held for the whole of a send
        self._mu = threading.Lock()  # protects _inbox, _send_cases, _etype
        # Subscriptions the next send delivers to. A tuple, replaced rather than
        # changed, so a send can go through it without copying it or holding _mu.
        self._send_cases = ()
        # Subscriptions added since the last send; send moves them over.
        self._inbox = []
        self._etype = None

    def subscribe(self, channel) -> Subscription:
        """Deliver every future value to ``channel`` until the subscription ends."""
        if not callable(getattr(channel, "put", None)):
            raise ErrBadChannel()
        sub = _FeedSub(self, channel)
        with self._mu:
            self._inbox.append(sub)
        return sub

    def _typecheck(self, typ) -> bool:
        if self._etype is None:
            self._etype = typ
            return True
        return self._etype is typ

    def _remove(self, sub: "_FeedSub") -> None:
        # Mark the subscription dead first, so that no value reaches its queue
        # once this returns and a send blocked on that queue gives up.
        sub.mark_removed()
        with self._mu:
            for i, s in enumerate(self._inbox):
                if s is sub:
                    del self._inbox[i]
                    return
            self._send_cases = tuple(s for s in self._send_cases if s is not sub)

    def send(self, value) -> int:
        """Deliver ``value`` to all subscribers; returns how many received it."""
        with self._send_lock:
            with self._mu:
                if self._inbox:
                    self._send_cases += tuple(self._inbox)
                    self._inbox = []
                if not self._typecheck(type(value)):
                    raise FeedTypeError(type(value), self._etype, "Send")
                cases = self._send_cases
            nsent = 0
            blocked = []
            # Fast path: offer the value to every subscriber without waiting.
            for sub in cases:
                r = sub.deliver(value, False)
                if r == _SENT:
                    nsent += 1
                elif r == _BLOCKED:
                    blocked.append(sub)
            # Then wait for the full queues to take it (or their subscriber to leave).
            for sub in blocked:
                if sub.deliver(value, True) == _SENT:
                    nsent += 1
            return nsent


# How long a send blocked on a full queue waits before it checks again whether
# the subscription was removed: Queue.put cannot also wait for the removal, so
# this bounds how long an unsubscribe waits for a send blocked on its queue.
_blockedSendPoll = 0.02


class _FeedSub(Subscription):
    __slots__ = ("feed", "channel", "_err", "_once", "_removed", "_lock", "_bounded")

    def __init__(self, feed: Feed, channel):
        self.feed = feed
        self.channel = channel
        self._err = ErrQueue()
        self._once = threading.Lock()
        self._removed = False
        # Held while a value is handed to the channel, so that once mark_removed
        # returns no value reaches the channel.
        self._lock = threading.Lock()
        # Only a bounded queue.Queue can be full; anything else just has put().
        self._bounded = isinstance(channel, queue.Queue) and channel.maxsize > 0

    def mark_removed(self) -> None:
        with self._lock:
            self._removed = True

    def deliver(self, value, block: bool) -> int:
        if not self._bounded:
            with self._lock:
                if self._removed:
                    return _REMOVED
                self.channel.put(value)
                return _SENT
        put = self.channel.put
        while True:
            with self._lock:
                if self._removed:
                    return _REMOVED
                try:
                    if block:
                        put(value, True, _blockedSendPoll)
                    else:
                        put(value, False)
                    return _SENT
                except queue.Full:
                    if not block:
                        return _BLOCKED

    def unsubscribe(self) -> None:
        with self._once:
            if self._err.closed:
                return
            self.feed._remove(self)
            self._err.close()

    def err(self) -> ErrQueue:
        return self._err


# ---------------------------------------------------------------------------
# Subscriptions (subscription.go)


def new_subscription(producer) -> Subscription:
    """Run ``producer(quit)`` in a thread as a subscription.

    ``quit`` is a :class:`threading.Event` set on unsubscribe; the producer
    should return soon after. What it returns (or raises) is the subscription's
    error, delivered on ``err()`` unless the subscriber had already left.
    """
    s = _FuncSub()
    t = threading.Thread(target=s._run, args=(producer,), name="event.NewSubscription", daemon=True)
    s._thread = t
    t.start()
    return s


class _FuncSub(Subscription):
    def __init__(self):
        self._unsub = threading.Event()
        self._err = ErrQueue()
        self._mu = threading.Lock()
        self._unsubscribed = False
        self._thread: threading.Thread | None = None

    def _run(self, producer):
        try:
            try:
                err = producer(self._unsub)
            except Exception as e:  # a raised error counts as the returned one
                log.debug("Subscription producer failed", err=e)
                err = e
            with self._mu:
                if not self._unsubscribed:
                    if err is not None:
                        self._err.put(err)
                    self._unsubscribed = True
        finally:
            self._err.close()

    def unsubscribe(self) -> None:
        with self._mu:
            if self._unsubscribed:
                return
            self._unsubscribed = True
            self._unsub.set()
        # Wait for the producer to end (unless it is the producer unsubscribing).
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def err(self) -> ErrQueue:
        return self._err


def resubscribe(backoff_max: float, fn) -> Subscription:
    """Keep a subscription alive: call ``fn(ctx)`` again whenever it fails.

    ``fn(ctx) -> (Subscription, error)``; ``ctx`` is a :class:`threading.Event`
    set when the attempt is abandoned (geth's context cancellation). Failed
    attempts are retried with an exponential back-off capped at ``backoff_max``
    seconds. The subscription ends when a subscription made by ``fn`` ends
    without an error, or on unsubscribe.
    """
    s = _ResubscribeSub(backoff_max, fn)
    t = threading.Thread(target=s._loop, name="event.resubscribeSub.loop", daemon=True)
    s._thread = t
    t.start()
    return s


class _ResubscribeSub(Subscription):
    def __init__(self, backoff_max: float, fn, now=time.monotonic):
        self.fn = fn
        self._err = ErrQueue()
        # The loop's mailbox: ("subscribed", (attempt, sub, err)) and ("unsub", None).
        self._mailbox = queue.Queue()
        self._mu = threading.Lock()
        self._unsubscribed = False
        self._current = None  # the subscription being watched, if any
        self._thread: threading.Thread | None = None
        self._attempt = 0
        self._now = now
        self.last_try = 0.0
        self.wait_time = backoff_max / 10
        self.backoff_max = backoff_max

    def unsubscribe(self) -> None:
        with self._mu:
            if self._unsubscribed:
                return
            self._unsubscribed = True
            current = self._current
        self._mailbox.put(("unsub", None))
        if current is not None:
            current.unsubscribe()  # ends wait_for_error
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def err(self) -> ErrQueue:
        return self._err

    def _loop(self):
        try:
            done = False
            while not done:
                sub = self._subscribe()
                if sub is None:
                    break
                done = self._wait_for_error(sub)
                sub.unsubscribe()
        finally:
            # Results of abandoned attempts still in the mailbox: end them.
            while True:
                try:
                    kind, value = self._mailbox.get_nowait()
                except queue.Empty:
                    break
                if kind == "subscribed":
                    _drop_stale(value[1])
            self._err.close()

    def _subscribe(self):
        while True:
            self.last_try = self._now()
            self._attempt += 1
            attempt = self._attempt
            ctx = threading.Event()
            t = threading.Thread(target=self._call_fn, args=(attempt, ctx),
                                 name="event.resubscribeSub.subscribe", daemon=True)
            t.start()
            while True:
                kind, value = self._mailbox.get()
                if kind == "unsub":
                    self._cancel(ctx)
                    return None
                got_attempt, sub, err = value
                if got_attempt != attempt:
                    _drop_stale(sub)
                    continue
                break
            self._cancel(ctx)
            if err is not None:
                # Subscribing failed: wait before the next try.
                if self._backoff_wait():
                    return None
                continue
            if sub is None:
                raise RuntimeError("event: ResubscribeFunc returned None subscription and no error")
            return sub

    def _call_fn(self, attempt, ctx):
        try:
            sub, err = self.fn(ctx)
        except Exception as e:
            sub, err = None, e
        with self._mu:
            # The loop abandons an attempt by setting ctx under _mu; after that
            # nobody reads the result, so end its subscription here.
            if not ctx.is_set():
                self._mailbox.put(("subscribed", (attempt, sub, err)))
                return
        _drop_stale(sub)

    def _cancel(self, ctx):
        with self._mu:
            ctx.set()

    def _wait_for_error(self, sub) -> bool:
        with self._mu:
            if self._unsubscribed:
                sub.unsubscribe()
                return True
            self._current = sub
        try:
            # unsubscribe() unsubscribes `sub`, which closes its err queue and
            # wakes this get with None.
            err = sub.err().get()
        finally:
            with self._mu:
                self._current = None
            sub.unsubscribe()
        return err is None

    def _backoff_wait(self) -> bool:
        if self._now() - self.last_try > self.backoff_max:
            self.wait_time = self.backoff_max / 10
        else:
            self.wait_time *= 2
            if self.wait_time > self.backoff_max:
                self.wait_time = self.backoff_max
        deadline = self._now() + self.wait_time
        while True:
            remaining = deadline - self._now()
            if remaining <= 0:
                return False
            try:
                kind, value = self._mailbox.get(timeout=remaining)
            except queue.Empty:
                return False
            if kind == "unsub":
                return True
            _drop_stale(value[1])


def _drop_stale(sub):
    # A result from an abandoned attempt: geth leaks it; end it instead.
    if sub is not None:
        sub.unsubscribe()


class SubscriptionScope:
    """Tracks subscriptions so they can all be ended at once (on shutdown)."""

    def __init__(self):
        self._mu = threading.Lock()
        self._subs = {}
        self._closed = False

    def track(self, s: Subscription):
        """Wrap ``s`` so that :meth:`close` ends it; None if the scope is closed."""
        with self._mu:
            if self._closed:
                return None
            ss = _ScopeSub(self, s)
            self._subs[ss] = None
            return ss

    def close(self) -> None:
        """Unsubscribe every tracked subscription; later track calls return None."""
        with self._mu:
            if self._closed:
                return
            self._closed = True
            subs = list(self._subs)
            self._subs = {}
            # geth unsubscribes while holding the lock; the inner subscriptions
            # don't take it, so doing the same here is safe.
            for s in subs:
                s.s.unsubscribe()

    def count(self) -> int:
        with self._mu:
            return len(self._subs)


class _ScopeSub(Subscription):
    __slots__ = ("sc", "s")

    def __init__(self, sc: SubscriptionScope, s: Subscription):
        self.sc = sc
        self.s = s

    def unsubscribe(self) -> None:
        self.s.unsubscribe()
        with self.sc._mu:
            self.sc._subs.pop(self, None)

    def err(self) -> ErrQueue:
        return self.s.err()
