"""Timing helpers for the bench modules.

The machine the benches run on is shared (2 cores, other test runs going on), so a
wall-clock rate measures the neighbours as much as the code. For work done by one
thread, :func:`cpu_rate` counts that thread's CPU time instead, in short slices,
and keeps the best slice: preemption then costs nothing and a slice spoilt by
cache or core sharing is dropped. Work spread over several threads or processes
(sockets, servers, lookups with helper threads) must use wall time (:func:`wall_rate`).
"""

import time

thread_time = time.thread_time


def cpu_rate(fn, seconds=1.0, slice_seconds=0.005, min_calls=1):
    """Calls of ``fn()`` per second of this thread's CPU time: the best of short slices.

    Runs for about ``seconds`` of CPU time (after one warm-up call). A slice is at
    least ``min_calls`` calls and at least ``slice_seconds`` long.
    """
    return _best_rate(fn, seconds, slice_seconds, min_calls, thread_time)


def wall_rate(fn, seconds=1.0, slice_seconds=0.005, min_calls=1):
    """Like :func:`cpu_rate` but in wall-clock time."""
    return _best_rate(fn, seconds, slice_seconds, min_calls, time.perf_counter)


def _best_rate(fn, seconds, slice_seconds, min_calls, clock):
    fn()
    best = 0.0
    start = clock()
    end = start + seconds
    while True:
        n = 0
        t0 = clock()
        while True:
            fn()
            n += 1
            t = clock()
            if n >= min_calls and t - t0 >= slice_seconds:
                break
        best = max(best, n / (t - t0))
        if t >= end:
            return best


def cpu_rates(fns, seconds=1.0, slice_seconds=0.005):
    """:func:`cpu_rate` of several functions, timed in alternating slices.

    Alternating keeps a figure and the limit it is compared with under the same
    conditions, so their ratio holds even while the machine is busy.
    """
    for fn in fns:
        fn()
    best = [0.0] * len(fns)
    end = thread_time() + seconds * len(fns)
    while True:
        for i, fn in enumerate(fns):
            n = 0
            t0 = thread_time()
            while True:
                fn()
                n += 1
                t = thread_time()
                if t - t0 >= slice_seconds:
                    break
            if n / (t - t0) > best[i]:
                best[i] = n / (t - t0)
        if t >= end:
            return best
