"""Tests for p2p.event: twins of geth's event/feed_test.go and
event/subscription_test.go, adapted where Go channels and Python queues differ
(a Python thread cannot select over several queues), plus scope and
queue-semantics tests. No test sleeps or asserts on timing; every wait has a
timeout so a bug fails the test instead of hanging it."""

import queue
import threading

import pytest

from p2p import event
from p2p.event import ErrBadChannel, Feed, FeedTypeError, SubscriptionScope, new_subscription, resubscribe

WAIT = 10.0  # generous bound for waits that should end at once


def start(fn, *args, name="test.event"):
    t = threading.Thread(target=fn, args=args, name=name, daemon=True)
    t.start()
    return t


def join_all(threads):
    for t in threads:
        t.join(WAIT)
        assert not t.is_alive(), "thread %s did not finish" % t.name


# ---------------------------------------------------------------------------
# feed_test.go


def test_feed_panics():
    f = Feed()
    f.send(2)
    check_panic(FeedTypeError(str, int, "Send"), lambda: f.send("2"))
    assert str(FeedTypeError(str, int, "Send")) == "event: wrong type in Send got str, want int"

    f = Feed()
    ch = queue.Queue()
    f.subscribe(ch)
    f.send(2)
    check_panic(FeedTypeError(float, int, "Send"), lambda: f.send(2.0))
    # The rejected value reached nobody.
    assert ch.get_nowait() == 2 and ch.empty()

    # A bool is an int subclass, but the type must match exactly (as in geth).
    f = Feed()
    f.send(1)
    with pytest.raises(FeedTypeError):
        f.send(True)

    # geth's Subscribe-time element type check has no twin: queues are untyped.

    f = Feed()
    check_panic(ErrBadChannel(), lambda: f.subscribe(0))
    check_panic(ErrBadChannel(), lambda: f.subscribe([]))  # no put(): not a sendable channel


def check_panic(want, fn):
    """Run fn; it must raise an exception equal to ``want`` (geth's recover check)."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - compared below
        assert type(e) is type(want) and (e == want or str(e) == str(want)), \
            "raised with wrong error: got %r, want %r" % (e, want)
        return
    pytest.fail("didn't raise")


def test_feed():
    feed = Feed()
    n = 200  # geth uses 1000 goroutines; threads are dearer
    subscribed = threading.Barrier(n + 1)
    errors = []

    def subscriber(i):
        subchan = queue.Queue(maxsize=1)
        sub = feed.subscribe(subchan)
        subscribed.wait(WAIT)
        try:
            v = subchan.get(timeout=WAIT)
            if v != 1:
                errors.append("%d: received value %d, want 1" % (i, v))
        except queue.Empty:
            errors.append("%d: receive timeout" % i)
        sub.unsubscribe()
        try:
            if sub.err().get(timeout=WAIT) is not None or not sub.err().closed:
                errors.append("%d: error channel not closed after unsubscribe" % i)
        except queue.Empty:
            errors.append("%d: unsubscribe timeout" % i)

    threads = [start(subscriber, i) for i in range(n)]
    subscribed.wait(WAIT)
    nsent = feed.send(1)
    assert nsent == n, "first send delivered %d times, want %d" % (nsent, n)
    join_all(threads)  # every subscriber has unsubscribed
    nsent = feed.send(2)
    assert nsent == 0, "second send delivered %d times, want 0" % nsent
    assert not errors, errors


def test_feed_subscribe_same_channel():
    feed = Feed()
    ch = queue.Queue(maxsize=1)  # one slot: each delivery waits for a receive
    sub1 = feed.subscribe(ch)
    sub2 = feed.subscribe(ch)
    feed.subscribe(ch)
    results = queue.Queue()

    def expect_sends(value, n):
        results.put((feed.send(value), n))

    def expect_recv(want_value, n):
        for _ in range(n):
            assert ch.get(timeout=WAIT) == want_value

    def round_(value, n):
        t = start(expect_sends, value, n)
        expect_recv(value, n)
        t.join(WAIT)
        nsent, want = results.get(timeout=WAIT)
        assert nsent == want, "send delivered %d times, want %d" % (nsent, want)
        assert ch.empty()

    round_(1, 3)
    sub1.unsubscribe()
    round_(2, 2)
    sub2.unsubscribe()
    round_(3, 1)


def test_feed_subscribe_blocked_post():
    feed = Feed()
    nsends = 200  # geth: 2000
    ch1 = queue.Queue(maxsize=1)
    ch2 = queue.Queue()  # unbounded: never blocks the senders
    feed.subscribe(ch1)
    senders = [start(feed.send, 99, name="test.event.send") for _ in range(nsends)]
    sub2 = feed.subscribe(ch2)
    try:
        # Done when ch1 has received nsends times; what ch2 gets depends on scheduling.
        for _ in range(nsends):
            assert ch1.get(timeout=WAIT) == 99
        join_all(senders)
        assert ch1.empty()
        assert 0 <= ch2.qsize() <= nsends
    finally:
        sub2.unsubscribe()


def test_feed_unsubscribe_blocked_post():
    feed = Feed()
    nsends = 100  # geth: 200 sends, 2000 channels
    chans = [queue.Queue(maxsize=nsends) for _ in range(500)]
    bchan = queue.Queue(maxsize=1)
    bchan.put("full")  # no room: sends block on it like on an unread channel
    bsub = feed.subscribe(bchan)
    counts = queue.Queue()

    # Queue up some sends. None of them can finish while bchan is full.
    senders = [start(lambda: counts.put(feed.send(99)), name="test.event.send") for _ in range(nsends)]
    subs = [feed.subscribe(ch) for ch in chans]
    for sub in subs:
        sub.unsubscribe()
    # Unblock the sends.
    bsub.unsubscribe()
    join_all(senders)
    # The first send to run held the send lock, blocked on bchan, until every
    # other subscription had ended: so no send reached anybody.
    assert [counts.get_nowait() for _ in range(nsends)] == [0] * nsends
    assert bchan.get_nowait() == "full" and bchan.empty()
    assert all(ch.empty() for ch in chans)
    assert feed.send(1) == 0


def test_feed_unsubscribe_sent_chan():
    feed = Feed()
    ch1 = queue.Queue(maxsize=1)
    ch2 = queue.Queue(maxsize=1)
    ch2.put("full")  # ch2 only takes the value once we make room
    sub1 = feed.subscribe(ch1)
    sub2 = feed.subscribe(ch2)
    results = queue.Queue()
    try:
        t = start(lambda: results.put(feed.send(0)))
        # Wait for the value on ch1, then unsubscribe ch1.
        assert ch1.get(timeout=WAIT) == 0
        sub1.unsubscribe()
        # Make room on ch2, finishing the send.
        assert ch2.get(timeout=WAIT) == "full"
        assert ch2.get(timeout=WAIT) == 0
        t.join(WAIT)
        assert results.get(timeout=WAIT) == 2

        # Send again: this reaches ch2 only.
        t = start(lambda: results.put(feed.send(0)))
        assert ch2.get(timeout=WAIT) == 0
        t.join(WAIT)
        assert results.get(timeout=WAIT) == 1
        assert ch1.empty()
    finally:
        sub2.unsubscribe()


def test_feed_unsubscribe_from_inbox():
    feed = Feed()
    ch1 = queue.Queue()
    ch2 = queue.Queue()
    sub1 = feed.subscribe(ch1)
    sub2 = feed.subscribe(ch1)
    sub3 = feed.subscribe(ch2)
    assert len(feed._inbox) == 3, "inbox length != 3 after subscribe"
    # geth's sendCases holds its removeSub case too (length 1); this port has none.
    assert len(feed._send_cases) == 0
    sub1.unsubscribe()
    sub2.unsubscribe()
    sub3.unsubscribe()
    assert len(feed._inbox) == 0, "inbox is non-empty after unsubscribe"
    assert len(feed._send_cases) == 0
    assert feed.send(1) == 0
    assert ch1.empty() and ch2.empty()


# BenchmarkFeedSend1000 has no unit-test twin: speed is not asserted in tests.


# ---------------------------------------------------------------------------
# More feed behaviour


def test_feed_unsubscribe_after_send_moves_case():
    feed = Feed()
    ch = queue.Queue()
    sub = feed.subscribe(ch)
    assert feed.send(1) == 1
    assert len(feed._send_cases) == 1 and not feed._inbox
    sub.unsubscribe()
    sub.unsubscribe()  # idempotent
    assert len(feed._send_cases) == 0
    assert feed.send(2) == 0
    assert ch.get_nowait() == 1 and ch.empty()


def test_feed_same_channel_counts_each_subscription():
    feed = Feed()
    ch = queue.Queue()
    subs = [feed.subscribe(ch) for _ in range(3)]
    assert feed.send("a") == 3
    subs[1].unsubscribe()
    assert feed.send("b") == 2
    assert [ch.get_nowait() for _ in range(5)] == ["a", "a", "a", "b", "b"]


def test_feed_simple_queue_and_put_objects():
    feed = Feed()
    sq = queue.SimpleQueue()
    got = []

    class Sink:
        def put(self, v):
            got.append(v)

    s1 = feed.subscribe(sq)
    s2 = feed.subscribe(Sink())
    assert feed.send(5) == 2
    assert sq.get_nowait() == 5 and got == [5]
    s1.unsubscribe()
    s2.unsubscribe()
    assert feed.send(6) == 0
    assert sq.empty() and got == [5]


def test_feed_blocked_send_waits_for_room():
    feed = Feed()
    ch = queue.Queue(maxsize=1)
    ch.put("first")
    sub = feed.subscribe(ch)
    done = threading.Event()
    results = []

    def sender():
        results.append(feed.send("second"))
        done.set()

    t = start(sender)
    try:
        # The sender cannot finish while the queue is full.
        assert not done.is_set()
        assert ch.get(timeout=WAIT) == "first"
        assert ch.get(timeout=WAIT) == "second"
        assert done.wait(WAIT)
        assert results == [1]
    finally:
        sub.unsubscribe()
        t.join(WAIT)


def test_feed_sends_are_serialized_in_order():
    feed = Feed()
    ch = queue.Queue()
    sub = feed.subscribe(ch)
    for i in range(100):
        assert feed.send(i) == 1
    assert [ch.get_nowait() for _ in range(100)] == list(range(100))
    sub.unsubscribe()


def test_feed_task_done_accounting():
    """Values the feed delivers (through Queue.put) count for Queue.join/task_done."""
    feed = Feed()
    ch = queue.Queue(maxsize=2)
    sub = feed.subscribe(ch)
    feed.send(1)
    feed.send(2)
    assert ch.unfinished_tasks == 2
    ch.get_nowait()
    ch.task_done()
    ch.get_nowait()
    ch.task_done()
    ch.join()  # returns at once
    sub.unsubscribe()


# ---------------------------------------------------------------------------
# subscription_test.go


class ErrInts(Exception):
    pass


ERR_INTS = ErrInts("error in subscribeInts")


def subscribe_ints(max_, fail, c):
    def producer(quit):
        for i in range(max_):
            if i >= fail:
                return ERR_INTS
            if quit.is_set():
                return None
            c.put(i)
        return None

    return new_subscription(producer)


def test_new_subscription_error():
    channel = queue.Queue()
    sub = subscribe_ints(10, 2, channel)
    # A Python thread cannot select over channel and err(): the error arrives
    # after the producer has put its ints, so read err() first and then check
    # that exactly the ints before `fail` came through.
    err = sub.err().get(timeout=WAIT)
    assert err is ERR_INTS
    got = []
    while not channel.empty():
        got.append(channel.get_nowait())
    assert got == [0, 1], "got errInts after %r, should be received at 2" % got
    sub.unsubscribe()
    assert sub.err().get(timeout=WAIT) is None, "non-nil error after unsubscribe"
    assert sub.err().closed, "channel still open after unsubscribe"


def test_resubscribe():
    calls = []
    nfails = 6

    def fn(ctx):
        calls.append(1)
        if len(calls) < nfails:
            return None, RuntimeError("oops")
        return new_subscription(lambda _quit: None), None

    sub = resubscribe(0.02, fn)
    assert sub.err().get(timeout=WAIT) is None
    assert sub.err().closed
    assert len(calls) == nfails, "resubscribe function called %d times, want %d" % (len(calls), nfails)
    sub.unsubscribe()


def test_resubscribe_abort():
    done = queue.Queue()

    def fn(ctx):
        if ctx.wait(WAIT):
            done.put(None)
        else:
            done.put("context given to resubscribe function not canceled")
        return None, None

    sub = resubscribe(0, fn)
    sub.unsubscribe()
    assert done.get(timeout=WAIT) is None
    assert sub.err().closed


# ---------------------------------------------------------------------------
# More subscriptions


def test_new_subscription_unsubscribe_stops_producer():
    started = threading.Event()
    ended = threading.Event()

    def producer(quit):
        started.set()
        quit.wait()
        ended.set()
        return RuntimeError("ignored: the subscriber already left")

    sub = new_subscription(producer)
    assert started.wait(WAIT)
    sub.unsubscribe()
    # unsubscribe waits for the producer, and its error is dropped.
    assert ended.is_set()
    assert sub.err().get_nowait() is None
    assert sub.err().closed
    sub.unsubscribe()  # idempotent


def test_new_subscription_producer_returns_nil():
    sub = new_subscription(lambda quit: None)
    assert sub.err().get(timeout=WAIT) is None
    assert sub.err().closed
    sub.unsubscribe()


def test_new_subscription_producer_raises():
    def producer(quit):
        raise ValueError("boom")

    sub = new_subscription(producer)
    err = sub.err().get(timeout=WAIT)
    assert isinstance(err, ValueError) and str(err) == "boom"
    assert sub.err().get(timeout=WAIT) is None  # then closed
    sub.unsubscribe()


def test_new_subscription_feeding_a_feed():
    """A producer that relays into a bounded queue ends when unsubscribed mid-send."""
    feed = Feed()
    out = queue.Queue(maxsize=1)
    fsub = feed.subscribe(out)
    produced = threading.Event()

    def producer(quit):
        produced.set()
        quit.wait()
        return None

    sub = new_subscription(producer)
    assert produced.wait(WAIT)
    assert feed.send(1) == 1
    assert out.get(timeout=WAIT) == 1
    sub.unsubscribe()
    fsub.unsubscribe()


def test_resubscribe_unsubscribe_while_subscribed():
    started = threading.Event()
    inner_quit = queue.Queue()

    def fn(ctx):
        def producer(quit):
            started.set()
            quit.wait()
            inner_quit.put(True)
            return None

        return new_subscription(producer), None

    sub = resubscribe(1.0, fn)
    assert started.wait(WAIT)
    # Whichever step the loop is at, unsubscribing ends the inner subscription.
    sub.unsubscribe()
    assert sub.err().closed
    assert inner_quit.get(timeout=WAIT) is True


def test_resubscribe_unsubscribe_before_fn_returns():
    release = threading.Event()
    ended = queue.Queue()

    def fn(ctx):
        release.wait(WAIT)  # returns only after the loop has given up on it

        def producer(quit):
            quit.wait()
            ended.put(True)
            return None

        return new_subscription(producer), None

    sub = resubscribe(1.0, fn)
    sub.unsubscribe()
    release.set()
    # The late subscription is ended rather than leaked (geth leaks it).
    assert ended.get(timeout=WAIT) is True


def test_resubscribe_resubscribes_after_error():
    inner = queue.Queue()
    calls = []

    def fn(ctx):
        calls.append(1)
        n = len(calls)

        def producer(quit):
            if n == 1:
                return RuntimeError("first subscription failed")
            inner.put(n)
            quit.wait()
            return None

        return new_subscription(producer), None

    sub = resubscribe(0.01, fn)
    assert inner.get(timeout=WAIT) == 2  # resubscribed after the first failed
    sub.unsubscribe()
    assert sub.err().closed
    assert len(calls) == 2


def test_resubscribe_backoff_times():
    clock = [100.0]
    s = event._ResubscribeSub(1.0, None, now=lambda: clock[0])
    assert s.wait_time == pytest.approx(0.1)
    # A retry soon after the last try doubles the wait, capped at backoff_max.
    s.last_try = clock[0]
    s._mailbox.put(("unsub", None))  # end the wait at once
    assert s._backoff_wait() is True
    assert s.wait_time == pytest.approx(0.2)
    for want in (0.4, 0.8, 1.0, 1.0):
        s._mailbox.put(("unsub", None))
        s._backoff_wait()
        assert s.wait_time == pytest.approx(want)
    # After a long quiet spell it starts over at backoff_max / 10.
    clock[0] += 5.0
    s._mailbox.put(("unsub", None))
    s._backoff_wait()
    assert s.wait_time == pytest.approx(0.1)
    # With no unsubscribe and the time passed, the wait ends by itself.
    s.backoff_max = 0.0
    s.wait_time = 0.0
    assert s._backoff_wait() is False


# ---------------------------------------------------------------------------
# SubscriptionScope (example_scope_test.go as a test)


def test_subscription_scope():
    scope = SubscriptionScope()
    div_feed, mul_feed = Feed(), Feed()
    divs, muls = queue.Queue(), queue.Queue()
    divsub = scope.track(div_feed.subscribe(divs))
    mulsub = scope.track(mul_feed.subscribe(muls))
    assert scope.count() == 2

    assert div_feed.send(22 // 11) == 1
    assert mul_feed.send(3 * 4) == 1
    assert divs.get_nowait() == 2
    assert muls.get_nowait() == 12

    # Closing the scope ends both subscriptions.
    scope.close()
    assert scope.count() == 0
    assert divsub.err().get(timeout=WAIT) is None and divsub.err().closed
    assert mulsub.err().get(timeout=WAIT) is None and mulsub.err().closed
    assert div_feed.send(1) == 0
    assert mul_feed.send(1) == 0
    # Tracking after close gives None; closing twice is fine.
    assert scope.track(Feed().subscribe(queue.Queue())) is None
    scope.close()


def test_subscription_scope_unsubscribe_untracks():
    scope = SubscriptionScope()
    feed = Feed()
    ch = queue.Queue()
    s1 = scope.track(feed.subscribe(ch))
    s2 = scope.track(new_subscription(lambda quit: quit.wait() and None))
    assert scope.count() == 2
    s1.unsubscribe()
    assert scope.count() == 1
    assert feed.send(1) == 0
    scope.close()  # ends the producer thread of s2
    assert s2.err().closed


def test_err_queue_closed_semantics():
    q = event.ErrQueue()
    assert not q.closed
    with pytest.raises(queue.Empty):
        q.get_nowait()
    q.put("e")
    q.close()
    assert q.get_nowait() == "e"
    for _ in range(3):  # every later receive returns None at once
        assert q.get_nowait() is None
    # A reader blocked before close is woken by it.
    q2 = event.ErrQueue()
    got = queue.Queue()
    t = start(lambda: got.put(q2.get(timeout=WAIT)))
    q2.close()
    t.join(WAIT)
    assert got.get_nowait() is None


def test_feed_delivers_through_the_queues_own_put():
    # Feed hands values to a queue through its public put(), even when the queue is
    # full and the send has to wait, so a Queue subclass sees every value.
    class CountingQueue(queue.Queue):
        def __init__(self):
            super().__init__(maxsize=1)
            self.puts = 0

        def put(self, item, block=True, timeout=None):
            self.puts += 1
            super().put(item, block, timeout)

    feed = Feed()
    q = CountingQueue()
    sub = feed.subscribe(q)
    assert feed.send(1) == 1
    out = queue.Queue()
    t = start(lambda: out.put(feed.send(2)))  # blocks: the queue is full
    assert q.get(timeout=WAIT) == 1
    assert out.get(timeout=WAIT) == 1
    t.join(WAIT)
    assert q.get(timeout=WAIT) == 2
    assert q.puts >= 2  # every value went through put (a full queue's send may retry)
    sub.unsubscribe()


def test_unsubscribe_releases_a_blocked_send_promptly():
    feed = Feed()
    q = queue.Queue(maxsize=1)
    sub = feed.subscribe(q)
    feed.send(0)
    out = queue.Queue()
    t = start(lambda: out.put(feed.send(1)))  # blocks on the full queue
    sub.unsubscribe()
    assert out.get(timeout=WAIT) == 0  # released, and the value did not reach the queue
    t.join(WAIT)
    assert q.get_nowait() == 0 and q.empty()
