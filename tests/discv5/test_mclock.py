"""The clock seam of discovery v5 (p2p/discv5/mclock.py, geth's common/mclock role).

``Simulated`` is Go's faketime for threads: virtual time moves only when every thread
it started is blocked on one of its queues, events or sleeps, and then jumps to the
next deadline. These tests pin that down; the simulation tests rely on it.
"""

import queue
import threading
import time

import pytest

from p2p.discv5 import mclock


def _run(clock, fn, timeout=30):
    out = []
    t = clock.go(lambda: out.append(fn()), "test body")
    t.join(timeout)
    assert not t.is_alive()
    assert clock.join_all(timeout)
    return out[0]


def test_simulated_sleep_jumps_in_no_real_time():
    clock = mclock.Simulated()
    t0 = time.monotonic()

    def body():
        clock.sleep(3600)
        return clock.now()

    assert _run(clock, body) == 3600 * mclock.Second
    assert time.monotonic() - t0 < 5


def test_simulated_queue_get_times_out_in_virtual_time():
    clock = mclock.Simulated()

    def body():
        q = clock.queue()
        with pytest.raises(queue.Empty):
            q.get(timeout=0.5)
        return clock.now()

    assert _run(clock, body) == 500 * mclock.Millisecond


def test_simulated_put_wakes_waiter_before_time_moves():
    """A thread blocked on a queue is woken by a put from another thread at the same virtual time."""
    clock = mclock.Simulated()

    def body():
        q = clock.queue()
        got = []

        def consumer():
            got.append((q.get(timeout=100), clock.now()))

        clock.go(consumer, "consumer")
        clock.sleep(2)
        q.put("x")
        clock.sleep(1)
        return got

    assert _run(clock, body) == [("x", 2 * mclock.Second)]


def test_simulated_after_func_and_event():
    clock = mclock.Simulated()

    def body():
        ev = clock.event()
        called = []
        ev.on_set(lambda: called.append(clock.now()))
        clock.after_func(5, ev.set)
        assert ev.wait(10)
        assert not clock.event().wait(1)
        return called, clock.now()

    called, now = _run(clock, body)
    assert called == [5 * mclock.Second]
    assert now == 6 * mclock.Second


def test_system_event_on_set():
    ev = mclock.System.event()
    hits = []
    ev.on_set(lambda: hits.append(1))
    t = threading.Thread(target=ev.set)
    t.start()
    assert ev.wait(5)
    t.join(5)
    ev.on_set(lambda: hits.append(2))  # already set: called at once
    assert hits == [1, 2]
